"""The one consume-process-produce loop every consumer service runs.

poll -> parse (unreadable -> ``<topic>.dlq``) -> ``processor.process(batch)`` -> produce -> commit.

With ``exactly_once`` the outputs and the consumer's offsets go into one Kafka transaction per
polled batch, and readers use ``read_committed``. Without it, outputs are flushed (acknowledged)
before offsets are committed: at-least-once. Either way offsets never run ahead of the output.
On a failed batch the loop aborts, rewinds every partition to its committed offset, lets the
processor restore its state, and goes on: a broker outage is waited out, not fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Generic

from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, ProducerFencedError

from orderflow import metrics
from orderflow.kafka_io import Record, make_consumer, make_producer
from orderflow.records import Inbound, M, Output, Processor, StopFlag, dead_letter, parse, text_key
from orderflow.settings import KafkaSettings

__all__ = ["Inbound", "Output", "Processor", "RetryLater", "Stage", "StopFlag", "dead_letter", "fenced", "parse"]

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0  # how often the consumer_lag gauge is refreshed
# A turn's first transactional request often reaches the coordinator while it is still writing the
# previous transaction's commit markers; it answers CONCURRENT_TRANSACTIONS and kafka-python retries
# after retry_backoff_ms, 100 ms by default. With 20 (what the Java client uses for this case) the p99
# POST->counted at 200 orders/s went from 175-250 ms to 85-100 ms (make bench's e2e step, 20 s runs).
RETRY_BACKOFF_MS = 20


class RetryLater(Exception):
    """Raised by a processor whose edge is down (an SMTP server, say): the batch is rewound and retried."""


def fenced(producer: Any, exc: BaseException) -> bool:
    """Whether another replica with our transactional id took over. After a fence kafka-python
    answers every call with a plain KafkaError naming it, so the producer's state is asked too."""
    last = getattr(getattr(producer, "_transaction_manager", None), "last_error", None)
    return isinstance(exc, ProducerFencedError) or isinstance(last, ProducerFencedError) or (
        "ProducerFenced" in str(exc))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's IO thread, where blocking calls are forbidden: it only takes notes.

    The loop restores state for the noted partitions right after the poll that assigned them.
    """

    def __init__(self, stage: Stage[Any]) -> None:
        self.stage = stage
        self.lock = threading.Lock()
        self.assigned: set[int] = set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("%s: partitions revoked %s", self.stage.name, sorted(tp.partition for tp in revoked))
        with self.lock:
            self.assigned -= {tp.partition for tp in revoked}

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.lock:
            self.assigned |= {tp.partition for tp in assigned}

    def take(self) -> set[int]:
        with self.lock:
            taken, self.assigned = self.assigned, set()
        return taken


class Stage(Generic[M]):
    """One consumer group member reading ``input_topic`` as ``model`` and feeding ``processor``."""

    def __init__(self, *, name: str, settings: KafkaSettings, input_topic: str, model: type[M],
                 processor: Processor[M], group_id: str, health_file: str | None = None,
                 stop: StopFlag | None = None) -> None:
        self.name = name
        self.settings = settings
        self.input_topic = input_topic
        self.model = model
        self.processor = processor
        self.group_id = group_id
        self.health_file = Path(health_file) if health_file else None
        self.stop = stop or StopFlag()
        # One id per replica, for both its group membership and its transactions.
        self.member_id = f"{group_id}-{settings.replica_id}"
        self.exactly_once = settings.exactly_once
        self.consumer: Any = None
        self.producer: Any = None
        self.rebalance = _Rebalance(self)
        self._unassigned_since: float | None = None
        self._committed: dict[Any, int] = {}  # what this member last committed, per partition
        self._lag_due = 0.0
        self._lag_partitions: set[int] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        self.producer = self._new_producer()
        # Static membership: a restarted replica takes its partitions straight back instead of
        # waiting for the broker to time its dead predecessor out.
        self.consumer = make_consumer(self.settings, group_id=self.group_id, group_instance_id=self.member_id,
                                      session_timeout_ms=self.settings.session_timeout_ms)
        if self.health_file is not None:
            self.health_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.exactly_once:
                self.producer.init_transactions()
            # Join the group only once the broker reports the input topic (a single-topic metadata
            # request, on the producer's client): a consumer that joins before its metadata has the
            # topic can be left without partitions (kafka-python), as starts right after the topics
            # were created showed.
            try:
                self.producer.partitions_for(self.input_topic)
            except KafkaError as exc:  # subscribe anyway: the rejoin watchdog covers a missed assignment
                log.warning("%s: %s not known to the broker yet (%s)", self.name, self.input_topic, exc)
            self._subscribe()
            log.info("%s: consuming %s as group %s (exactly_once=%s)",
                     self.name, self.input_topic, self.group_id, self.exactly_once)
            while not self.stop.stopped:
                self._turn()
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=10)
            log.info("%s: stopped", self.name)

    def _rejoin_if_stuck(self) -> None:
        """A member that joined before its client knew the topic's partitions can be left with none
        (kafka-python); after ``KAFKA_UNASSIGNED_REJOIN_SECONDS`` without any, it joins afresh."""
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
        elif now - self._unassigned_since > self.settings.unassigned_rejoin_seconds:
            log.warning("%s: no partitions for %.0fs; joining the group again", self.name, now - self._unassigned_since)
            self._unassigned_since = None
            self.consumer.unsubscribe()
            self._subscribe()

    def _subscribe(self) -> None:
        self.consumer.subscribe([self.input_topic], listener=self.rebalance)

    def _new_producer(self) -> Any:
        # A stable id per replica: a restarted replica fences its own zombie.
        tid = self.member_id if self.exactly_once else None
        return make_producer(self.settings, transactional_id=tid, linger_ms=10, retry_backoff_ms=RETRY_BACKOFF_MS)

    def _turn(self) -> None:
        try:
            polled = self.consumer.poll(timeout_ms=self.settings.poll_timeout_ms,
                                        max_records=self.settings.max_batch)
            self._heartbeat()
            self._observe_lag()
            records = [Record.of(r) for batch in polled.values() for r in batch]
            if not polled and not self.consumer.assignment():
                # No partitions (yet): poll returns at once, so wait rather than spin.
                self.stop.wait(self.settings.poll_timeout_ms / 1000)
                self._rejoin_if_stuck()
            else:
                self._unassigned_since = None
            fresh = self.rebalance.take()
            if fresh:
                # Records just fetched for new partitions start at the committed offset, which may
                # be behind the processor's state: drop them and seek to where the state ends.
                records = [r for r in records if r.partition not in fresh]
                self.resume_from_state(sorted(fresh))
            if records:
                self._handle(records)
            elif not fresh:
                self._commit_past_markers()
        except (KafkaError, TimeoutError, RetryLater) as exc:  # TimeoutError: a restore read
            if self.exactly_once and fenced(self.producer, exc):
                log.error("%s: fenced by a newer replica with the same transactional id; exiting", self.name)
                raise
            log.warning("%s: batch failed (%s); rewinding to the last commit", self.name, exc)
            if isinstance(exc, RetryLater):
                self.stop.wait(self.settings.retry_backoff_seconds)
            self._recover()

    def _handle(self, records: list[Record]) -> None:
        parsed = [parse(self.model, r, self.group_id) for r in records]
        good = [p for p in parsed if isinstance(p, Inbound)]
        outputs = [p for p in parsed if isinstance(p, Output)]
        for out in outputs:
            head = dict(out.headers)
            log.warning("%s: dead-lettered %s@%s: %s", self.name, head["source_topic"].decode(),
                        head["source_offset"].decode(), head["error"].decode()[:200],
                        extra={"order_id": text_key(out.key), "dlq_topic": out.topic})
        ends = {r.partition: r.offset + 1 for r in records}
        outputs += self.processor.process(good, ends)
        offsets = {TopicPartition(self.input_topic, p): OffsetAndMetadata(end, "", -1) for p, end in ends.items()}
        self._commit(outputs, offsets)
        metrics.RECORDS_PROCESSED.labels(self.name).inc(len(records))
        metrics.DEAD_LETTERS.labels(self.name).inc(len(records) - len(good))

    def _commit(self, outputs: list[Output], offsets: dict[Any, Any]) -> None:
        """Outputs and offsets together (one transaction), or outputs acknowledged before offsets."""
        if self.exactly_once:
            self.producer.begin_transaction()
            self._send(outputs)
            self.producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
            with metrics.COMMIT_SECONDS.labels(self.name).time():
                self.producer.commit_transaction()
        else:
            self._send(outputs)
            with metrics.COMMIT_SECONDS.labels(self.name).time():
                self.producer.flush()
                self.consumer.commit(offsets)
        self._committed.update({tp: meta.offset for tp, meta in offsets.items()})

    def _commit_past_markers(self) -> None:
        """A transactional producer's commit markers take offsets too. Once idle, the consumer's
        position is past them: commit it, so that lag reads 0 when nothing is left to do."""
        moved = {}
        owned = self.consumer.assignment()
        for tp, done in list(self._committed.items()):
            if tp not in owned:
                del self._committed[tp]
                continue
            position = self.consumer.position(tp)
            if position is not None and position > done:
                moved[tp] = OffsetAndMetadata(position, "", -1)
        if moved:
            self._commit([], moved)

    def _send(self, outputs: list[Output]) -> None:
        futures = [self.producer.send(o.topic, key=o.key.encode() if isinstance(o.key, str) else o.key,
                                      value=o.value, headers=list(o.headers)) for o in outputs]
        if not self.exactly_once:
            for f in futures:
                f.get(timeout=60)

    def _recover(self) -> None:
        """Abort what was in flight, then rewind to the last commit; retry until the broker answers."""
        delay = 0.5
        while not self.stop.stopped:
            try:
                if self.exactly_once:
                    try:
                        self.producer.abort_transaction()
                    except KafkaError as exc:
                        if fenced(self.producer, exc):
                            raise
                        log.warning("%s: abort failed (%s); starting a new producer", self.name, exc)
                        self.producer.close(timeout=5)
                        self.producer = self._new_producer()
                        self.producer.init_transactions()
                assigned = self.consumer.assignment()
                if assigned:
                    self.resume_from_state([tp.partition for tp in assigned])
                return
            except (KafkaError, TimeoutError) as exc:  # TimeoutError: a restore read
                if self.exactly_once and fenced(self.producer, exc):
                    raise
                log.warning("%s: recovery failed (%s); retrying in %.1fs", self.name, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10)

    def resume_from_state(self, partitions: list[int]) -> None:
        """Seek each owned partition to where its processed state ends, or to the committed offset."""
        for p in partitions:
            self._committed.pop(TopicPartition(self.input_topic, p), None)
        known = self.processor.restore(partitions)
        for p in partitions:
            tp = TopicPartition(self.input_topic, p)
            if p in known:
                self.consumer.seek(tp, known[p])
            else:
                committed = self.consumer.committed(tp)
                if committed is not None:
                    self.consumer.seek(tp, committed)
                else:
                    self.consumer.seek_to_beginning(tp)
        log.info("%s: owns partitions %s", self.name, sorted(partitions))

    def _observe_lag(self) -> None:
        """Every few seconds: highwater (known from the last fetch, no request) minus position, per partition."""
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + LAG_INTERVAL_SECONDS
        owned = set()
        try:
            for tp in self.consumer.assignment():
                high, position = self.consumer.highwater(tp), self.consumer.position(tp, timeout_ms=0)
                if high is not None and position is not None:
                    metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, high - position))
                    owned.add(tp.partition)
        except KafkaError as exc:  # a metric is not worth a rewind; the next turn says more
            log.debug("%s: lag not measured (%s)", self.name, exc)
            return
        for gone in self._lag_partitions - owned:
            metrics.CONSUMER_LAG.remove(self.name, self.input_topic, str(gone))
        self._lag_partitions = owned

    def _heartbeat(self) -> None:
        if self.health_file is not None:
            self.health_file.touch()
