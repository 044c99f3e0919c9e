"""The Kafka edge of the dashboard: one daemon thread reading four topics into a ``DashboardState``.

No consumer group: the reader assigns itself every partition, seeks back to load recent history
(the whole compacted ``analytics_result``; about the last ``history`` offsets of each partition of
the other three: the commit markers of the stages' transactions take offsets too, so on a
transactional topic that is fewer records) and then follows the topics. It also reads the
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

from dashboard.lag import LagWatcher, describe
from dashboard.view import DashboardEvent, DashboardState
from orderflow.events import AnalyticsSnapshot, EmailOutcome, OrderPlaced, OrderVerdict, utcnow
from orderflow.kafka_io import KafkaError, TopicPartition, make_consumer
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT, dlq, pipeline_topics

log = logging.getLogger(__name__)

MODELS: dict[str, type[BaseModel]] = {ORDER_DETAILS: OrderPlaced, ORDER_CONFIRMED: OrderVerdict,
                                      ORDER_EMAIL_SENT: EmailOutcome, ANALYTICS_RESULT: AnalyticsSnapshot}
OFFSETS_TIMEOUT_MS = 10_000


class TopicsMissing(Exception):
    """The topics are not provisioned yet: wait, as for a broker that is down."""


class Feed:
    """Owns the reader thread and the lock that guards the state it writes and the routes read."""

    def __init__(self, kafka: KafkaSettings, state: DashboardState, *, history: int,
                 consumer_factory: Callable[[], Any] | None = None, poll_timeout_ms: int = 500,
                 backoff: tuple[float, float] = (0.5, 15.0), lag: LagWatcher | None = None) -> None:
        self.kafka = kafka
        self.state = state
        self.history = history
        self.models = {kafka.topic(name): model for name, model in MODELS.items()}
        self.dead_letter_topics = [s.name for s in pipeline_topics(kafka.partitions, kafka.topic_prefix)
                                   if s.name.endswith(dlq(""))]
        self.compacted = kafka.topic(ANALYTICS_RESULT)
        self.poll_timeout_ms = poll_timeout_ms
        self.backoff = backoff
        self.lock = threading.Lock()
        self.positions: dict[Any, int] = {}  # next offset to read per TopicPartition
        self.connected = False
        self.last_error: str | None = None
        self.applied = 0
        self.skipped = 0
        self._factory = consumer_factory or self._make_consumer
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.lag = lag  # started and stopped with the reader

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread unless it runs already (idempotent, cheap)."""
        if self.running:
            return
        with self._start_lock:
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="dashboard-feed", daemon=True)
                self._thread.start()
                if self.lag is not None:
                    self.lag.start(self.state, self.lock)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.lag is not None:
            self.lag.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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

    # -- the reader thread ---------------------------------------------------------------------

    def _make_consumer(self) -> Any:
        return make_consumer(self.kafka, group_id=None, bootstrap_timeout_ms=10_000,
                             client_id=f"dashboard-{self.kafka.replica_id}")

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._factory()
                self._assign(consumer)
                self.connected, self.last_error, delay = True, None, self.backoff[0]
                while not self._stop.is_set():
                    self._apply(consumer.poll(timeout_ms=self.poll_timeout_ms))
            except Exception as exc:  # noqa: BLE001 - the reader must outlive any broker trouble
                self.connected = False
                self.last_error = describe(exc)
                if isinstance(exc, KafkaError | TopicsMissing | OSError):
                    log.warning("dashboard feed: %s; retrying in %.1fs", self.last_error, delay)
                else:
                    log.exception("dashboard feed failed; retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                if consumer is not None:
                    self._close(consumer)
        self.connected = False

    @staticmethod
    def _close(consumer: Any) -> None:
        try:
            consumer.close()
        except Exception:  # noqa: BLE001 - closing a broken client must not stop the retry loop
            log.debug("closing the dashboard consumer failed", exc_info=True)

    def _assign(self, consumer: Any) -> None:
        tps: list[Any] = []
        missing = []
        for topic in [*self.models, *self.dead_letter_topics]:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                missing.append(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions or ())]
        if missing:
            raise TopicsMissing(f"topics not found: {', '.join(missing)}")
        consumer.assign(tps)
        fresh = [tp for tp in tps if tp not in self.positions]
        begin = consumer.beginning_offsets(fresh, OFFSETS_TIMEOUT_MS) if fresh else {}
        end = consumer.end_offsets(fresh, OFFSETS_TIMEOUT_MS) if fresh else {}
        for tp in tps:
            if tp in self.positions:
                consumer.seek(tp, self.positions[tp])
            elif tp.topic == self.compacted or tp.topic not in self.models:  # analytics, dead letters
                consumer.seek(tp, begin[tp])
            else:
                consumer.seek(tp, max(begin[tp], end[tp] - self.history))  # offsets, not records: markers count
        log.info("dashboard feed reading %d partitions of %d topics", len(tps),
                 len(self.models) + len(self.dead_letter_topics))

    def _apply(self, batches: dict[Any, list[Any]]) -> None:
        events: list[DashboardEvent] = []
        for tp, records in batches.items():
            model = self.models.get(tp.topic)
            if model is None:
                self._dead_letters(records)
                continue
            for record in records:
                self.positions[tp] = record.offset + 1
                event = self._parse(model, record)
                if event is not None:
                    events.append(event)
        if events:
            with self.lock:
                self.state.apply_all(events)
            self.applied += len(events)

    def _dead_letters(self, records: list[Any]) -> None:
        with self.lock:
            for r in records:
                self.positions[TopicPartition(r.topic, r.partition)] = r.offset + 1
                h = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
                self.state.record_dead_letter(
                    r.topic.removeprefix(self.kafka.topic_prefix), partition=r.partition, offset=r.offset,
                    at=datetime.fromtimestamp(r.timestamp / 1000, UTC), error=h.get("error", "")[:300],
                    source=f"{h.get('source_topic', '?')}[{h.get('source_partition', '?')}]@"
                           f"{h.get('source_offset', '?')}")

    def _parse(self, model: type[BaseModel], record: Any) -> DashboardEvent | None:
        try:
            if record.value is None:
                raise ValueError("empty record value")
            return model.model_validate_json(record.value)  # type: ignore[return-value]
        except (ValidationError, ValueError) as exc:
            self.skipped += 1
            log.warning("dashboard skips %s[%d]@%d: %s", record.topic, record.partition, record.offset,
                        str(exc).splitlines()[0])
            return None
