"""The dashboard's feeds: what the view model is filled from, under one lock.

The orders (counts, the latest orders and their timelines) come from the order store, on a thread of
their own (``dashboard.store_feed.StoreFeed``). Kafka is read for what the store does not hold: the
analytics totals (the whole compacted ``analytics_result``: its snapshots are the truth for revenue)
and the dead-letter topics (from their start, counting their records, not their end offsets, which
transaction markers take too), without a consumer group (``orderflow.kafka.Follower``). Broker
trouble is waited out with backoff; after a reconnect reading resumes where it stopped, so nothing is
applied twice. Consumer lag is measured apart, by ``dashboard.lag.LagWatcher``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dashboard.lag import LagWatcher
from dashboard.store_feed import StoreFeed
from dashboard.view import DashboardState
from orderflow.events import AnalyticsSnapshot, utcnow
from orderflow.kafka import DeadLetter, Follower, Record, parse_value
from orderflow.settings import KafkaSettings
from orderflow.store import OrderStore
from orderflow.topics import ANALYTICS_RESULT, dlq, pipeline_topics

log = logging.getLogger(__name__)

STORE_RETRY_CEILING = 5.0  # seconds between reads of an order store that cannot be read, at most


class Feed:
    """Owns the readers and the lock that guards the state they write and the routes read."""

    def __init__(self, kafka: KafkaSettings, state: DashboardState, *, store: OrderStore | None = None,
                 store_interval: float = 0.3, consumer_factory: Callable[[], Any] | None = None,
                 poll_timeout_ms: int = 500, backoff: tuple[float, float] = (0.5, 15.0),
                 lag: LagWatcher | None = None) -> None:
        self.kafka = kafka
        self.state = state
        self.analytics = kafka.topic(ANALYTICS_RESULT)
        dead_letter_topics = [s.name for s in pipeline_topics(kafka.partitions, kafka.topic_prefix)
                              if s.name.endswith(dlq(""))]
        self.lock = threading.Lock()
        self.applied = 0
        self.skipped = 0
        self.lag = lag  # started and stopped with the reader
        # None: no store to read (a view filled by hand, in tests)
        # A failed read of the store costs little: it is tried again sooner than a broker.
        store_backoff = (backoff[0], min(backoff[1], STORE_RETRY_CEILING))
        self.orders = None if store is None else StoreFeed(store, state, self.lock, interval=store_interval,
                                                           backoff=store_backoff)
        self.follower = Follower(kafka, [self.analytics, *dead_letter_topics], start_at=self._start_at,
                                 handle=self._apply, name="dashboard-feed", consumer_factory=consumer_factory,
                                 poll_timeout_ms=poll_timeout_ms, backoff=backoff)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader threads unless they run already (idempotent, cheap)."""
        if not self.follower.running:
            self.follower.start()
            if self.lag is not None:
                self.lag.start_into(self.state, self.lock)
        if self.orders is not None and not self.orders.running:
            self.orders.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.orders is not None:
            self.orders.stop(timeout)
        if self.lag is not None:
            self.lag.stop(timeout)
        self.follower.stop(timeout)

    @property
    def running(self) -> bool:
        return self.follower.running

    @property
    def connected(self) -> bool:
        return self.follower.connected

    @property
    def last_error(self) -> str | None:
        return self.follower.last_error

    @property
    def positions(self) -> dict[Any, int]:
        return self.follower.positions

    # -- what the routes read ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Kafka's reader."""
        return {"running": self.running, "connected": self.connected, "error": self.last_error,
                "applied": self.applied, "skipped": self.skipped}

    def store_status(self) -> dict[str, Any]:
        """The order store's reader (``running`` False and no figures when there is none)."""
        if self.orders is None:
            return {"running": False, "connected": False, "ready": False, "error": None, "rows_read": 0, "loads": 0}
        return {"running": self.orders.running, **self.orders.status()}

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """The state as JSON types (only the orders changed after version ``since``) and the readers' status."""
        with self.lock:
            data = self.state.to_json(now=utcnow(), since=since)
        data["feed"] = self.status()
        data["store"] = self.store_status()
        return data

    def signature(self, data: dict[str, Any] | None = None) -> tuple[Any, ...]:
        """What a live stream compares to know whether there is something to send: of ``data`` (a
        ``snapshot``), or of the state and readers as they are now."""
        if data is None:
            data = {"version": self.state.version, "feed": self.status(), "store": self.store_status()}
        feed, store = data["feed"], data["store"]
        return data["version"], feed["connected"], feed["error"], store["connected"], store["ready"], store["error"]

    # -- the reader's callbacks ----------------------------------------------------------------

    def _start_at(self, topic: str, partition: int, begin: int, end: int) -> int:
        return begin  # analytics (compacted) and dead letters: all of them

    def _apply(self, records: list[Record]) -> None:
        events: list[AnalyticsSnapshot] = []
        dead: list[Record] = []
        for record in records:
            if record.topic != self.analytics:
                dead.append(record)
                continue
            event = self._parse(record)
            if event is not None:
                events.append(event)
        with self.lock:
            for r in dead:
                letter = DeadLetter.from_record(r)
                self.state.record_dead_letter(
                    r.topic.removeprefix(self.kafka.topic_prefix), partition=r.partition, offset=r.offset,
                    at=datetime.fromtimestamp(r.timestamp_ms / 1000, UTC), error=letter.error[:300],
                    source=letter.source)
            if events:
                self.state.apply_all(events)
        self.applied += len(events)

    def _parse(self, record: Record) -> AnalyticsSnapshot | None:
        try:
            return parse_value(AnalyticsSnapshot, record.value)
        except (ValidationError, ValueError) as exc:
            self.skipped += 1
            log.warning("dashboard skips %s[%d]@%d: %s", record.topic, record.partition, record.offset,
                        str(exc).splitlines()[0])
            return None
