"""``AssignedReader``: every partition of some topics, read in batches without a consumer group.

For a reader that keeps its offsets elsewhere (the order store keeps them in its own database, in the
same transaction as what it made of the records): it assigns itself all partitions, starts each at the
offset the caller gives, and after every poll tells where each partition stands. Nothing is committed
to Kafka. Reads are ``read_committed``: records of aborted transactions are never returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from orderflow.kafka.clients import KafkaConsumer, TopicPartition, make_consumer
from orderflow.kafka.follow import TopicsMissing
from orderflow.kafka.records import Record
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)

Position = tuple[str, int]  # (topic, partition)
OFFSETS_TIMEOUT_MS = 10_000


class AssignedReader:
    """``open(start)``, then ``poll()`` and ``positions()`` in turns; ``seek(start)`` rewinds; ``close()``."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str], *, name: str) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.name = name
        self.partitions: list[Position] = []
        self._consumer: KafkaConsumer | None = None
        self._tps: dict[Position, Any] = {}

    def open(self, start: Mapping[Position, int]) -> list[Position]:
        """Assign every partition of the topics and seek each to ``start`` (a partition not in it: its
        beginning). ``TopicsMissing`` when a topic has no partitions yet; ``KafkaError`` when the broker
        cannot be reached."""
        self.close()
        self._consumer = make_consumer(self.settings, group_id=None, bootstrap_timeout_ms=OFFSETS_TIMEOUT_MS,
                                       client_id=f"{self.name}-{self.settings.replica_id}")
        missing, tps = [], []
        for topic in self.topics:
            partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                missing.append(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions or ())]
        if missing:
            self.close()
            raise TopicsMissing(f"topics not found: {', '.join(missing)}")
        self._consumer.assign(tps)
        self._tps = {(tp.topic, tp.partition): tp for tp in tps}
        self.partitions = list(self._tps)
        self.seek(start)
        return self.partitions

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"{self.name}: not open")
        return self._consumer

    def seek(self, start: Mapping[Position, int]) -> None:
        """Read each partition from ``start`` on, or from its first retained record. A stored offset before
        the first retained one means records are gone (retention): said in the log, and read from there."""
        first = self.beginnings()
        for position, tp in self._tps.items():
            wanted = start.get(position, 0)
            if wanted < first[position]:
                if wanted:
                    log.warning("%s: %s[%d] keeps records from offset %d only; %d records before it are gone",
                                self.name, *position, first[position], first[position] - wanted)
                wanted = first[position]
            self.consumer.seek(tp, wanted)

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [Record.of(r) for batch in polled.values() for r in batch]

    def positions(self) -> dict[Position, int]:
        """Per partition, the next offset to read: past every record ``poll`` returned and past the
        transaction markers after them."""
        return {position: int(self.consumer.position(tp)) for position, tp in self._tps.items()}

    def beginnings(self) -> dict[Position, int]:
        found = self.consumer.beginning_offsets(list(self._tps.values()), OFFSETS_TIMEOUT_MS)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}

    def ends(self) -> dict[Position, int]:
        """Per partition, the end offset now (the last stable one: open transactions are not counted)."""
        found = self.consumer.end_offsets(list(self._tps.values()), OFFSETS_TIMEOUT_MS)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001 - closing a broken client must not hide why it is closed
                log.debug("%s: closing the consumer failed", self.name, exc_info=True)
            self._consumer = None
