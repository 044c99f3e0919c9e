"""The two ways the stages write: a batch's outputs with its input offsets, and notes acknowledged one by one.

``BatchWriter`` is a stage's own producer. With ``exactly_once`` the outputs and the consumer's
offsets go into one Kafka transaction; without it, outputs are acknowledged before the offsets are
committed (at-least-once). Either way offsets never run ahead of the output.

``AckedWriter`` writes outside any transaction, for a record that must be durable before the
stage takes a step it cannot undo (an email handed to an SMTP server): ``settle()`` waits for
the broker's acknowledgement of everything sent so far.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from orderflow import metrics
from orderflow.kafka.clients import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition, make_producer
from orderflow.kafka.errors import KafkaError, fenced
from orderflow.kafka.records import Output
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)

# A turn's first transactional request often reaches the coordinator while it is still writing the
# previous transaction's commit markers; it answers CONCURRENT_TRANSACTIONS and kafka-python retries
# after retry_backoff_ms, 100 ms by default. 20 is what the Java client uses for this case
# (bench/README.md, "What moved the figures").
RETRY_BACKOFF_MS = 20


class BatchWriter:
    """A stage's outputs and input offsets, committed together (see the module's docstring)."""

    def __init__(self, settings: KafkaSettings, *, name: str, transactional_id: str | None) -> None:
        self.settings = settings
        self.name = name
        self.transactional_id = transactional_id
        self.producer: KafkaProducer = self._new_producer()

    @property
    def exactly_once(self) -> bool:
        return self.transactional_id is not None

    def _new_producer(self) -> KafkaProducer:
        return make_producer(self.settings, transactional_id=self.transactional_id, linger_ms=10,
                             retry_backoff_ms=RETRY_BACKOFF_MS)

    def start(self, input_topic: str) -> None:
        """Claim the transactional id (fencing a zombie with the same one) and learn ``input_topic``."""
        if self.exactly_once:
            self.producer.init_transactions()
        # A consumer that joins its group before the client's metadata has the topic can be left
        # without partitions (kafka-python), as starts right after the topics were created showed:
        # a single-topic metadata request first.
        try:
            self.producer.partitions_for(input_topic)
        except KafkaError as exc:  # go on: the stage's rejoin watchdog covers a missed assignment
            log.warning("%s: %s not known to the broker yet (%s)", self.name, input_topic, exc)

    def commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, OffsetAndMetadata],
               consumer: KafkaConsumer) -> None:
        """Outputs and offsets together (one transaction), or outputs acknowledged before offsets."""
        if self.exactly_once:
            self.producer.begin_transaction()
            self._send(outputs)
            self.producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            with metrics.COMMIT_SECONDS.labels(self.name).time():
                self.producer.commit_transaction()
        else:
            for future in self._send(outputs):
                future.get(timeout=60)
            with metrics.COMMIT_SECONDS.labels(self.name).time():
                consumer.commit(offsets)

    def _send(self, outputs: Sequence[Output]) -> list[Any]:
        return [self.producer.send(o.topic, key=o.key_bytes, value=o.value, headers=list(o.headers))
                for o in outputs]

    def abort(self) -> None:
        """Abort what is in flight; a producer that cannot abort is replaced. A fence is raised, never
        outlived: a new producer would fence the replica that replaced this one."""
        if not self.exactly_once:
            return
        try:
            self.producer.abort_transaction()
        except KafkaError as exc:
            if fenced(exc):
                raise
            log.warning("%s: abort failed (%s); starting a new producer", self.name, exc)
            self.producer.close(timeout=5)
            self.producer = self._new_producer()
            self.producer.init_transactions()

    def close(self) -> None:
        self.producer.close(timeout=10)


class AckedWriter:
    """Records written outside any transaction; ``settle()`` returns once the broker has every one."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._unsettled: list[Any] = []
        self._acked: dict[tuple[str, int], int] = {}  # (topic, partition) -> the offset after the last acknowledged

    def send(self, topic: str, key: str, value: bytes) -> None:
        if self._producer is None:
            self._producer = make_producer(self.settings, linger_ms=0)
        self._unsettled.append(self._producer.send(topic, key=key.encode(), value=value))

    def send_output(self, out: Output) -> None:
        """``out`` with its key as it is and its headers (a dead letter)."""
        if self._producer is None:
            self._producer = make_producer(self.settings, linger_ms=0)
        self._unsettled.append(self._producer.send(out.topic, key=out.key_bytes, value=out.value,
                                                   headers=list(out.headers)))

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the acknowledgement of every record sent; raises (a ``KafkaError``) if one failed."""
        while self._unsettled:
            meta = self._unsettled[0].get(timeout)
            self._unsettled.pop(0)
            where = (meta.topic, meta.partition)
            self._acked[where] = max(self._acked.get(where, 0), meta.offset + 1)

    def acked_end(self, topic: str, partition: int) -> int | None:
        """The offset after the last record of ``partition`` that ``settle()`` saw acknowledged, if any."""
        return self._acked.get((topic, partition))

    def forget(self, timeout: float = 30.0) -> None:
        """Drop what is unsettled (a batch given up on): flush it out, but do not wait for its outcome."""
        self._unsettled.clear()
        if self._producer is not None:
            self._producer.flush(timeout=timeout)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    def __enter__(self) -> AckedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
