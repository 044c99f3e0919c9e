"""The dashboard's other pages: the topic view and the shop (the order pages are ``order_pages``).

All read-only: nothing here writes to Kafka or changes the dashboard (the shop page's form posts
to the orders API, from the browser). Every value a user gave goes through Jinja's autoescaping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, render_template

from dashboard.catalogue import CATALOGUE
from dashboard.settings import Settings
from orderflow.kafka import KafkaError, Record, TopicPeek, describe, peek_topics
from orderflow.topics import pipeline_topics

log = logging.getLogger(__name__)

TOPIC_MESSAGES = 5  # newest records shown per topic
VALUE_CHARS = 4000  # longer values are cut on the topic page
TOPICS_CACHE_SECONDS = 3.0  # the topic view is read from Kafka at most this often, however many ask


def shown_value(raw: bytes | None) -> tuple[str, str]:
    """(kind, text): pretty JSON when the value is JSON, else text, else hex; cut at ``VALUE_CHARS``."""
    if raw is None:
        return "null", "(no value: a tombstone)"
    try:
        kind, text = "json", json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        try:
            kind, text = "text", raw.decode()
        except UnicodeDecodeError:
            kind, text = "bytes", raw.hex(" ")
    return kind, text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + " …"


def shown_record(r: Record) -> dict[str, Any]:
    kind, text = shown_value(r.value)
    return {"partition": r.partition, "offset": r.offset,
            "key": None if r.key is None else r.key.decode("utf-8", "replace"),
            "at": datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).isoformat(timespec="seconds"),
            "headers": [(k, v.decode("utf-8", "replace")) for k, v in r.headers], "kind": kind, "value": text}


class TopicsCache:
    """The topic view's read from Kafka (a client of its own each time), shared for ``TOPICS_CACHE_SECONDS``.

    One read at a time: requests that come during a read wait for it and get its result, so any number
    of visitors make at most one Kafka client every few seconds. A failure is kept as long.
    """

    def __init__(self, settings: Settings) -> None:
        kafka = settings.kafka
        self.kafka = kafka
        self.names = [spec.name for spec in pipeline_topics(kafka.partitions, kafka.topic_prefix)]
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._result: tuple[list[TopicPeek], str | None] = ([], None)

    def get(self) -> tuple[list[TopicPeek], str | None]:
        """(the topics, an error message or None)."""
        with self._lock:
            if self._read_at is None or time.monotonic() - self._read_at >= TOPICS_CACHE_SECONDS:
                try:
                    self._result = peek_topics(self.kafka, self.names, last=TOPIC_MESSAGES), None
                except (KafkaError, OSError) as exc:
                    log.warning("topic view: %s", exc)
                    self._result = [], describe(exc)
                self._read_at = time.monotonic()
            return self._result


def init_app(app: Flask, settings: Settings) -> None:
    topics_cache = TopicsCache(settings)

    @app.get("/topics")
    def topics_page() -> Any:
        """Each of the pipeline's topics: partitions, offsets, the newest records (read at most seconds ago)."""
        peeks, error = topics_cache.get()
        topics = [{"name": p.name, "offsets": sorted(p.offsets.items()),
                   "records": [shown_record(r) for r in p.records],
                   "first": sum(b for b, _ in p.offsets.values()), "end": sum(e for _, e in p.offsets.values())}
                  for p in peeks]
        page = render_template("topics.html", topics=topics, error=error, prefix=settings.kafka.topic_prefix,
                               last=TOPIC_MESSAGES, cache_seconds=TOPICS_CACHE_SECONDS)
        return page, 503 if error else 200

    @app.get("/shop")
    def shop_page() -> Any:
        """A small furniture shop whose form sends ``POST /order`` to the orders API from the browser."""
        return render_template("shop.html", catalogue=CATALOGUE, orders_api_url=settings.orders_api_url)
