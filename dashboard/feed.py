"""The Kafka edge of the dashboard: one daemon thread reading four topics into a ``DashboardState``.

No consumer group (``orderflow.kafka.Follower``): the reader assigns itself every partition, seeks
back to load recent history (the whole compacted ``analytics_result``; about the last ``history``
offsets of each partition of the other three: the commit markers of the stages' transactions take
offsets too, so on a transactional topic that is fewer records) and then follows the topics. It also reads the
dead-letter topics from their start and counts their records (not their end offsets, for the same
markers).
Broker trouble is waited out with backoff; after a reconnect reading resumes where it stopped, so
nothing is applied twice. Consumer lag is measured apart, by ``dashboard.lag.LagWatcher``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from dashboard.lag import LagWatcher
from dashboard.view import DashboardEvent, DashboardState
from orderflow.events import AnalyticsSnapshot, EmailOutcome, OrderPlaced, OrderVerdict, utcnow
from orderflow.kafka import DeadLetter, Follower, Record, parse_value
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT, dlq, pipeline_topics

log = logging.getLogger(__name__)

MODELS: dict[str, type[BaseModel]] = {ORDER_DETAILS: OrderPlaced, ORDER_CONFIRMED: OrderVerdict,
                                      ORDER_EMAIL_SENT: EmailOutcome, ANALYTICS_RESULT: AnalyticsSnapshot}


class Feed:
    """Owns the reader and the lock that guards the state it writes and the routes read."""

    def __init__(self, kafka: KafkaSettings, state: DashboardState, *, history: int,
                 consumer_factory: Callable[[], Any] | None = None, poll_timeout_ms: int = 500,
                 backoff: tuple[float, float] = (0.5, 15.0), lag: LagWatcher | None = None) -> None:
        self.kafka = kafka
        self.state = state
        self.history = history
        self.models = {kafka.topic(name): model for name, model in MODELS.items()}
        dead_letter_topics = [s.name for s in pipeline_topics(kafka.partitions, kafka.topic_prefix)
                              if s.name.endswith(dlq(""))]
        self.compacted = kafka.topic(ANALYTICS_RESULT)
        self.lock = threading.Lock()
        self.applied = 0
        self.skipped = 0
        self.lag = lag  # started and stopped with the reader
        self.follower = Follower(kafka, [*self.models, *dead_letter_topics], start_at=self._start_at,
                                 handle=self._apply, name="dashboard-feed", consumer_factory=consumer_factory,
                                 poll_timeout_ms=poll_timeout_ms, backoff=backoff)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread unless it runs already (idempotent, cheap)."""
        if not self.follower.running:
            self.follower.start()
            if self.lag is not None:
                self.lag.start(self.state, self.lock)

    def stop(self, timeout: float = 10.0) -> None:
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
        return {"running": self.running, "connected": self.connected, "error": self.last_error,
                "applied": self.applied, "skipped": self.skipped}

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """The state as JSON types (only the orders changed after version ``since``) and the reader's status."""
        with self.lock:
            data = self.state.to_json(now=utcnow(), since=since)
        data["feed"] = self.status()
        return data

    def order(self, order_id: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.state.order(order_id)
            return None if entry is None else entry.to_json()

    # -- the reader's callbacks ----------------------------------------------------------------

    def _start_at(self, topic: str, partition: int, begin: int, end: int) -> int:
        if topic == self.compacted or topic not in self.models:  # analytics, dead letters: all of them
            return begin
        return max(begin, end - self.history)  # offsets, not records: markers count

    def _apply(self, records: list[Record]) -> None:
        events: list[DashboardEvent] = []
        dead: list[Record] = []
        for record in records:
            model = self.models.get(record.topic)
            if model is None:
                dead.append(record)
                continue
            event = self._parse(model, record)
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

    def _parse(self, model: type[BaseModel], record: Record) -> DashboardEvent | None:
        try:
            return parse_value(model, record.value)  # type: ignore[return-value]  # MODELS holds only these
        except (ValidationError, ValueError) as exc:
            self.skipped += 1
            log.warning("dashboard skips %s[%d]@%d: %s", record.topic, record.partition, record.offset,
                        str(exc).splitlines()[0])
            return None
