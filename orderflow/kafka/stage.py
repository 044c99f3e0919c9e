"""The one consume-process-produce loop every consumer service runs.

poll -> parse (unreadable -> ``<topic>.dlq``) -> ``processor.process(batch)`` -> write and commit
(``orderflow.kafka.writers.BatchWriter``: one transaction per polled batch with exactly-once) ->
``processor.committed(ends)``, so that state kept outside Kafka follows the commit, never leads it.
On a failed batch the loop aborts, rewinds every partition to its committed offset, lets the
processor restore its state, and goes on: a broker outage is waited out, not fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Generic

from kafka import ConsumerRebalanceListener

from orderflow import metrics
from orderflow.errors import RetryLater
from orderflow.kafka.backoff import Backoff
from orderflow.kafka.batch import Inbound, M, Processor, parse
from orderflow.kafka.clients import KafkaConsumer, TopicPartition, make_consumer, offsets
from orderflow.kafka.deadletters import DeadLetter
from orderflow.kafka.errors import KafkaError, describe, fenced
from orderflow.kafka.records import Output, Record, text_key
from orderflow.kafka.writers import BatchWriter
from orderflow.settings import KafkaSettings
from orderflow.stopflag import StopFlag

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0  # how often the consumer_lag gauge is refreshed


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python ships no type hints
    """Runs on kafka-python's IO thread, where blocking calls are forbidden: it only takes notes.

    The loop restores state for the noted partitions right after the poll that assigned them.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.assigned: set[int] = set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("%s: partitions revoked %s", self.name, sorted(tp.partition for tp in revoked))
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
        self.consumer: KafkaConsumer | None = None
        self.writer: BatchWriter | None = None
        self.rebalance = _Rebalance(name)
        self._unassigned_since: float | None = None
        self._committed: dict[TopicPartition, int] = {}  # what this member last committed, per partition
        self._lag_due = 0.0
        self._lag_partitions: set[int] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        writer = self.writer = BatchWriter(self.settings, name=self.name,
                                           transactional_id=self.member_id if self.exactly_once else None)
        if self.health_file is not None:
            self.health_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self._start():
                log.info("%s: consuming %s as group %s (exactly_once=%s)",
                         self.name, self.input_topic, self.group_id, self.exactly_once)
            while not self.stop.stopped:
                self._turn()
        finally:
            if self.consumer is not None:
                self.consumer.close(autocommit=False)
            writer.close()
            log.info("%s: stopped", self.name)

    def _start(self) -> bool:
        """Connect the consumer and the writer, waiting for the broker however long it is away; False if
        stopped first."""
        assert self.writer is not None
        backoff = Backoff(0.5, 5.0)
        while not self.stop.stopped:
            try:
                if self.consumer is None:
                    # Static membership: a restarted replica takes its partitions straight back instead
                    # of waiting for the broker to time its dead predecessor out.
                    # Fetches wait a moment for more records: fewer, larger transactions cost the broker
                    # and the stage less per order than one per record when orders trickle in.
                    self.consumer = make_consumer(self.settings, group_id=self.group_id,
                                                  group_instance_id=self.member_id,
                                                  session_timeout_ms=self.settings.session_timeout_ms,
                                                  fetch_min_bytes=self.settings.fetch_min_bytes,
                                                  fetch_max_wait_ms=self.settings.fetch_max_wait_ms)
                self.writer.start(self.input_topic)
                self._subscribe()
                return True
            except KafkaError as exc:
                if self.exactly_once and fenced(exc):
                    raise
                pause = backoff.next()
                log.warning("%s: cannot start yet (%s); retrying in %.1fs", self.name, describe(exc), pause)
                self.stop.wait(pause)
        return False

    def _subscribe(self) -> None:
        assert self.consumer is not None
        self.consumer.subscribe([self.input_topic], listener=self.rebalance)

    def _rejoin_if_stuck(self) -> None:
        """A member that joined before its client knew the topic's partitions can be left with none
        (kafka-python); after ``KAFKA_UNASSIGNED_REJOIN_SECONDS`` without any, it joins afresh."""
        assert self.consumer is not None
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
        elif now - self._unassigned_since > self.settings.unassigned_rejoin_seconds:
            log.warning("%s: no partitions for %.0fs; joining the group again", self.name, now - self._unassigned_since)
            self._unassigned_since = None
            self.consumer.unsubscribe()
            self._subscribe()

    def _turn(self) -> None:
        assert self.consumer is not None
        try:
            polled = self.consumer.poll(timeout_ms=self.settings.poll_timeout_ms, max_records=self.settings.max_batch)
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
            if self.exactly_once and fenced(exc):
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
            dead = DeadLetter.from_output(out)
            log.warning("%s: dead-lettered %s: %s", self.name, dead.source, dead.error[:200],
                        extra={"order_id": text_key(out.key), "dlq_topic": out.topic})
        ends = {r.partition: r.offset + 1 for r in records}
        outputs += self.processor.process(good, ends)
        self._commit(outputs, {TopicPartition(self.input_topic, p): end for p, end in ends.items()})
        metrics.RECORDS_PROCESSED.labels(self.name).inc(len(records))
        metrics.DEAD_LETTERS.labels(self.name).inc(len(records) - len(good))

    def _commit(self, outputs: list[Output], positions: dict[TopicPartition, int]) -> None:
        assert self.writer is not None and self.consumer is not None
        self.writer.commit(outputs, offsets(positions), self.consumer)
        self._committed.update(positions)
        self.processor.committed({tp.partition: offset for tp, offset in positions.items()})

    def _commit_past_markers(self) -> None:
        """A transactional producer's commit markers take offsets too. Once idle, the consumer's
        position is past them: commit it, so that lag reads 0 when nothing is left to do."""
        assert self.consumer is not None
        moved = {}
        owned = self.consumer.assignment()
        for tp, done in list(self._committed.items()):
            if tp not in owned:
                del self._committed[tp]
                continue
            position = self.consumer.position(tp)
            if position is not None and position > done:
                moved[tp] = position
        if moved:
            self._commit([], moved)

    def _recover(self) -> None:
        """Abort what was in flight, then rewind to the last commit; retry until the broker answers."""
        assert self.writer is not None and self.consumer is not None
        # A short ceiling: a try waits for the broker by itself (a new producer's connection), and the
        # pause after it is time lost once the broker is back.
        backoff = Backoff(0.5, 2.0)
        while not self.stop.stopped:
            try:
                self.writer.abort()
                assigned = self.consumer.assignment()
                if assigned:
                    self.resume_from_state([tp.partition for tp in assigned])
                return
            except (KafkaError, TimeoutError) as exc:  # TimeoutError: a restore read
                if self.exactly_once and fenced(exc):
                    raise
                pause = backoff.next()
                log.warning("%s: recovery failed (%s); retrying in %.1fs", self.name, exc, pause)
                self.stop.wait(pause)

    def resume_from_state(self, partitions: list[int]) -> None:
        """Seek each owned partition to where its processed state ends, or to the committed offset."""
        assert self.consumer is not None
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
        assert self.consumer is not None
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
