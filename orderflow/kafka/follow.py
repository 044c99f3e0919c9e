"""Following topics without a consumer group, on a thread of its own (the dashboard's readers).

A ``Follower`` assigns itself every partition of its topics, starts each where ``start_at`` says
(given the partition's first and end offsets) and hands each poll's records to ``handle``. Broker
trouble is waited out with backoff; after a reconnect reading resumes where it stopped, so nothing
is handed over twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from orderflow.background import BackgroundLoop
from orderflow.kafka.backoff import Backoff
from orderflow.kafka.clients import TopicPartition, make_consumer
from orderflow.kafka.errors import KafkaError, describe
from orderflow.kafka.records import Record
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)

OFFSETS_TIMEOUT_MS = 10_000

# (topic, partition, first retained offset, end offset) -> where to start reading
StartAt = Callable[[str, int, int, int], int]


class TopicsMissing(Exception):
    """The topics are not provisioned yet: wait, as for a broker that is down."""


class Follower(BackgroundLoop):
    def __init__(self, settings: KafkaSettings, topics: Sequence[str], *, start_at: StartAt,
                 handle: Callable[[list[Record]], None], name: str = "follower",
                 consumer_factory: Callable[[], Any] | None = None, poll_timeout_ms: int = 500,
                 backoff: tuple[float, float] = (0.5, 15.0)) -> None:
        super().__init__(thread_name=name)
        self.settings = settings
        self.topics = list(topics)
        self.start_at = start_at
        self.handle = handle
        self.name = name
        self.poll_timeout_ms = poll_timeout_ms
        self.backoff = backoff
        self.positions: dict[TopicPartition, int] = {}  # next offset to read
        self.connected = False
        self.last_error: str | None = None
        self._factory = consumer_factory or self._make_consumer

    def _make_consumer(self) -> Any:
        return make_consumer(self.settings, group_id=None, bootstrap_timeout_ms=10_000,
                             client_id=f"{self.name}-{self.settings.replica_id}")

    def _run(self) -> None:
        backoff = Backoff(*self.backoff)
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._factory()
                self._assign(consumer)
                self.connected, self.last_error = True, None
                backoff.reset()
                while not self._stop.is_set():
                    self._hand_over(consumer.poll(timeout_ms=self.poll_timeout_ms))
            except Exception as exc:  # noqa: BLE001 - the reader must outlive any broker trouble
                self.connected = False
                self.last_error = describe(exc)
                pause = backoff.next()
                if isinstance(exc, KafkaError | TopicsMissing | OSError):
                    log.warning("%s: %s; retrying in %.1fs", self.name, self.last_error, pause)
                else:
                    log.exception("%s failed; retrying in %.1fs", self.name, pause)
                self._stop.wait(pause)
            finally:
                if consumer is not None:
                    _close(consumer)
        self.connected = False

    def _assign(self, consumer: Any) -> None:
        tps: list[TopicPartition] = []
        missing = []
        for topic in self.topics:
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
            if tp not in self.positions:
                self.positions[tp] = self.start_at(tp.topic, tp.partition, begin[tp], end[tp])
            consumer.seek(tp, self.positions[tp])
        log.info("%s reading %d partitions of %d topics", self.name, len(tps), len(self.topics))

    def _hand_over(self, batches: dict[Any, list[Any]]) -> None:
        records = [Record.of(r) for batch in batches.values() for r in batch]
        for tp, batch in batches.items():
            if batch:
                self.positions[TopicPartition(tp.topic, tp.partition)] = batch[-1].offset + 1
        if records:
            self.handle(records)


def _close(consumer: Any) -> None:
    try:
        consumer.close()
    except Exception:  # noqa: BLE001 - closing a broken client must not stop the retry loop
        log.debug("closing a follower's consumer failed", exc_info=True)
