"""The two ways the stages write: a batch's outputs with its input offsets, and notes acknowledged one by one.

``BatchWriter`` is a stage's own producer. With ``exactly_once`` the outputs and the consumer's
offsets go into one Kafka transaction; without it, outputs are acknowledged before the offsets are
committed (at-least-once). Either way offsets never run ahead of the output.

``AckedWriter`` writes outside any transaction, for a record that must be durable before the
stage takes a step it cannot undo (an email handed to an SMTP server): ``settle()`` waits for
the broker's acknowledgement of everything sent so far.

Both outlive a broker that dies under them: a producer that can no longer be used (a fatal state,
stuck without a producer id, a transactional step that never finishes; see
``orderflow.kafka.workarounds``) is replaced, with a WARNING saying what was seen, and a successor
with the same transactional id aborts whatever its predecessor left open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from orderflow import metrics
from orderflow.kafka import workarounds
from orderflow.kafka.clients import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition, make_producer
from orderflow.kafka.errors import KafkaError, describe, fenced
from orderflow.kafka.records import Output
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)

# A turn's first transactional request often reaches the coordinator while it is still writing the
# previous transaction's commit markers; it answers CONCURRENT_TRANSACTIONS and kafka-python retries
# after retry_backoff_ms, 100 ms by default. 20 is what the Java client uses for this case
# (bench/README.md, "What moved the figures").
RETRY_BACKOFF_MS = 20
# A transactional step (claiming the id, adding the offsets, committing, aborting) not done after this
# long is taken for stuck: the producer is replaced and the batch done again. A healthy one takes
# milliseconds; kafka-python may otherwise wait forever (orderflow.kafka.workarounds).
TRANSACTION_STEP_SECONDS = 15.0


class BatchWriter:
    """A stage's outputs and input offsets, committed together (see the module's docstring)."""

    def __init__(self, settings: KafkaSettings, *, name: str, transactional_id: str | None) -> None:
        self.settings = settings
        self.name = name
        self.transactional_id = transactional_id
        self._producer: KafkaProducer | None = None
        self._open = False  # a transaction begun, neither committed nor aborted yet

    @property
    def exactly_once(self) -> bool:
        return self.transactional_id is not None

    def _ready_producer(self) -> KafkaProducer:
        """The producer; a new one (its transactional id claimed, fencing any predecessor) when there is none."""
        if self._producer is None:
            producer = make_producer(self.settings, transactional_id=self.transactional_id, linger_ms=10,
                                     retry_backoff_ms=RETRY_BACKOFF_MS,
                                     max_block_ms=int(TRANSACTION_STEP_SECONDS * 1000))
            if self.exactly_once:
                try:
                    producer.init_transactions()  # bounded by max_block_ms
                except BaseException:
                    workarounds.discard(producer)  # its request may have been dropped: never ask it again
                    raise
            self._producer = producer
        return self._producer

    def start(self, input_topic: str) -> None:
        """Claim the transactional id (fencing a zombie with the same one) and learn ``input_topic``."""
        producer = self._ready_producer()
        # A consumer that joins its group before the client's metadata has the topic can be left
        # without partitions (kafka-python), as starts right after the topics were created showed:
        # a single-topic metadata request first.
        try:
            producer.partitions_for(input_topic)
        except KafkaError as exc:  # go on: the stage's rejoin watchdog covers a missed assignment
            log.warning("%s: %s not known to the broker yet (%s)", self.name, input_topic, exc)

    def commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, OffsetAndMetadata],
               consumer: KafkaConsumer) -> None:
        """Outputs and offsets together (one transaction), or outputs acknowledged before offsets."""
        producer = self._ready_producer()
        if self.exactly_once:
            producer.begin_transaction()
            self._open = True
            self._send(producer, outputs)
            try:
                workarounds.send_offsets_to_transaction(producer, offsets, consumer.group_metadata(),
                                                        TRANSACTION_STEP_SECONDS)
                with metrics.COMMIT_SECONDS.labels(self.name).time():
                    workarounds.commit_transaction(producer, TRANSACTION_STEP_SECONDS)
            except workarounds.TransactionStuck as exc:
                self._replace(str(exc))
                raise
            self._open = False
        else:
            try:
                for future in self._send(producer, outputs):
                    future.get(timeout=60)
            except KafkaError:
                self._replace_if_stuck(producer)
                raise
            with metrics.COMMIT_SECONDS.labels(self.name).time():
                consumer.commit(offsets)

    @staticmethod
    def _send(producer: KafkaProducer, outputs: Sequence[Output]) -> list[Any]:
        return [producer.send(o.topic, key=o.key_bytes, value=o.value, headers=list(o.headers)) for o in outputs]

    def abort(self) -> None:
        """Abort what is in flight and have a producer ready again; one that cannot abort is replaced.
        A fence is raised, never outlived: a new producer would fence the replica that replaced this one."""
        producer = self._producer
        if producer is not None and self.exactly_once and self._open:
            try:
                workarounds.abort_transaction(producer, TRANSACTION_STEP_SECONDS)
                self._open = False
            except KafkaError as exc:
                if fenced(exc):
                    raise
                self._replace(f"abort failed ({describe(exc)})")
        elif producer is not None:
            self._replace_if_stuck(producer)
        self._ready_producer()  # now, so that a recovery ends with a writer that can write

    def _replace_if_stuck(self, producer: KafkaProducer) -> None:
        why = workarounds.stuck(producer)
        if why is not None:
            error = workarounds.fatal_error(producer)
            if error is not None and fenced(error):
                raise error
            self._replace(why)

    def _replace(self, why: str) -> None:
        producer, self._producer, self._open = self._producer, None, False
        if producer is not None:
            log.warning("%s: replacing the producer: %s", self.name, why)
            workarounds.discard(producer)

    def close(self) -> None:
        if self._producer is not None:
            workarounds.close(self._producer, timeout=10)
            self._producer = None


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
        try:
            while self._unsettled:
                meta = self._unsettled[0].get(timeout)
                self._unsettled.pop(0)
                where = (meta.topic, meta.partition)
                self._acked[where] = max(self._acked.get(where, 0), meta.offset + 1)
        except KafkaError:
            self._replace_if_stuck()
            raise

    def acked_end(self, topic: str, partition: int) -> int | None:
        """The offset after the last record of ``partition`` that ``settle()`` saw acknowledged, if any."""
        return self._acked.get((topic, partition))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything sent so far, settled or not, has reached the broker or failed;
        raises ``KafkaError`` if that takes longer than ``timeout``."""
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout)
            except KafkaError:
                self._replace_if_stuck()
                raise

    def forget(self, timeout: float = 30.0) -> None:
        """Drop what is unsettled (a batch given up on): flush it out, but do not wait for its outcome."""
        self._unsettled.clear()
        try:
            self.flush(timeout)
        except KafkaError as exc:  # the records stay with the producer, which goes on trying
            log.warning("records not flushed within %.0fs (%s)", timeout, describe(exc))

    def _replace_if_stuck(self) -> None:
        producer = self._producer
        why = workarounds.stuck(producer) if producer is not None else None
        if producer is not None and why is not None:
            log.warning("replacing the producer: %s", why)
            self._producer, self._unsettled = None, []
            workarounds.discard(producer)

    def close(self) -> None:
        if self._producer is not None:
            workarounds.close(self._producer, timeout=10)
            self._producer = None

    def __enter__(self) -> AckedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
