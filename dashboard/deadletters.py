"""The dead letters for operators: the newest of each dead-letter topic, and replay into the source topic.

Replay is ``orderflow.kafka.replay``: each dead letter not replayed before goes back to the topic it
came from (at-least-once; see there). It changes the pipeline, so it is a POST behind the login and
the CSRF check, never a link.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, flash, get_flashed_messages, redirect, render_template, url_for

from dashboard.settings import Settings
from orderflow.kafka import DeadLetter, KafkaError, describe, peek_topics, replay
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, dlq

log = logging.getLogger(__name__)

SOURCES = (ORDER_DETAILS, ORDER_CONFIRMED)  # the topics that have a dead-letter topic
SHOWN = 20  # newest dead letters shown per topic


def init_app(app: Flask, settings: Settings) -> None:
    kafka = settings.kafka

    @app.get("/dead-letters")
    def dead_letters_page() -> Any:
        """The newest dead letters of each dead-letter topic, with why and where from."""
        error = None
        topics: list[dict[str, Any]] = []
        try:
            peeks = peek_topics(kafka, [kafka.topic(dlq(source)) for source in SOURCES], last=SHOWN)
            for source, peek in zip(SOURCES, peeks, strict=True):
                letters = [DeadLetter.from_record(r) for r in peek.records]
                total = sum(end - begin for begin, end in peek.offsets.values())
                topics.append({"source": source, "name": peek.name, "letters": letters, "offsets": total})
        except (KafkaError, OSError) as exc:
            error = describe(exc)
        return render_template("dead_letters.html", topics=topics, error=error, shown=SHOWN,
                               messages=get_flashed_messages()), 503 if error else 200

    @app.post("/dead-letters/<source>/replay")
    def replay_dead_letters(source: str) -> Any:
        """Send every dead letter of ``source`` not replayed before back to ``source``."""
        if source not in SOURCES:
            return render_template("dead_letters.html", topics=[], error=f"no dead-letter topic for {source}",
                                   shown=SHOWN, messages=[]), 404
        try:
            count = replay(kafka, source)
        except (KafkaError, OSError, TimeoutError) as exc:
            flash(f"replay of {source} failed: {describe(exc)}")
        else:
            log.warning("operator replayed %d dead letter(s) into %s", count, source)
            flash(f"replayed {count} dead letter(s) into {source}")
        return redirect(url_for("dead_letters_page"))
