"""Bringing a replica's state file (``orderflow.statestore``) up to date with Kafka.

A stage writes its state file after each Kafka commit, so the file is exact up to a checkpoint per
partition, which is at most a little behind Kafka: one batch after a crash between the commit and
the write, or what another replica did with the partition meanwhile. ``catch_up`` reads only the
records after the checkpoint, folds them into the file and moves the checkpoint; a partition with no
checkpoint (a new or rebuilt file, a partition this replica never owned) is read from the beginning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from orderflow.kafka.clients import TopicPartition, make_admin, make_consumer
from orderflow.kafka.errors import KafkaError
from orderflow.kafka.reading import read_topic
from orderflow.kafka.records import Record
from orderflow.settings import KafkaSettings
from orderflow.statestore import StateStore, StateWriter

log = logging.getLogger(__name__)

CHUNK = 1000  # records folded per SQLite transaction: progress survives a crash, memory stays flat
PROGRESS_EVERY = 50_000  # records between two progress lines of a long read

Fold = Callable[[StateWriter, Sequence[Record]], None]
_NO_TOPIC_ID = "00000000-0000-0000-0000-000000000000"


def bind_to_topics(settings: KafkaSettings, state: StateStore, topics: Sequence[str]) -> None:
    """Tie ``state`` to the topics it is read from, by their ids (KIP-516): a file left from topics
    since deleted and made again under the same names (a wiped broker) is emptied, then rebuilt."""
    admin = make_admin(settings)
    try:
        described = admin.describe_topics(list(topics))
    finally:
        admin.close()
    ids = {str(t["name"]): str(t["topic_id"]) for t in described
           if not t.get("error_code") and t.get("topic_id") not in (None, _NO_TOPIC_ID)}
    missing = set(topics) - set(ids)
    if missing:
        raise KafkaError(f"topics without an id: {sorted(missing)}")
    state.bind(ids)


def committed_offsets(settings: KafkaSettings, group: str, topic: str, partitions: Sequence[int],
                      timeout: float = 30.0) -> dict[int, int]:
    """The offsets ``group`` committed for ``partitions`` of ``topic`` (those it ever committed).

    Read as the stage's own consumer reads them (read_committed, so a transaction's offsets count
    once the transaction is complete), without joining the group.
    """
    consumer = make_consumer(settings, group_id=group)
    try:
        found = {p: consumer.committed(TopicPartition(topic, p), timeout_ms=int(timeout * 1000)) for p in partitions}
    finally:
        consumer.close(autocommit=False)
    return {p: int(offset) for p, offset in found.items() if offset is not None}


def catch_up(settings: KafkaSettings, state: StateStore, *, topic: str, checkpoint: str, partitions: Sequence[int],
             fold: Fold, until: Mapping[int, int] | None = None) -> int:
    """Fold the records of ``topic`` after checkpoint ``checkpoint`` into ``state``; the number read.

    With ``until``, each partition is read up to that offset (a partition it does not name is left
    alone), and the checkpoint ends there; without, up to the topic's end now, and the checkpoint
    ends after the last record read. ``fold`` gets the records in chunks, with the transaction that
    also moves the checkpoint past them.
    """
    start: dict[int, int] = {}
    for p in partitions:
        known = state.checkpoint(checkpoint, p)
        if known is None:
            log.info("%s partition %d: no checkpoint %s; reading it from the beginning", topic, p, checkpoint)
        start[p] = known or 0
    todo = [p for p in partitions if until is None or (p in until and until[p] > start[p])]
    read = 0
    if todo:
        chunk: list[Record] = []
        for record in read_topic(settings, topic, partitions=todo, start=start, end=dict(until or {})):
            chunk.append(record)
            if len(chunk) >= CHUNK:
                read += _fold(state, checkpoint, chunk, fold)
                chunk = []
                if read % PROGRESS_EVERY < CHUNK:
                    log.info("%s: %d records caught up so far", topic, read)
        read += _fold(state, checkpoint, chunk, fold)
    if until is not None:
        with state.transaction() as tx:
            for p in todo:
                tx.advance(checkpoint, p, until[p])
    ends = {p: until[p] for p in sorted(partitions) if p in until} if until is not None else "its end"
    log.info("caught up %s partitions %s: %d records read, from checkpoints %s to %s", topic, sorted(partitions),
             read, {p: start[p] for p in sorted(partitions)}, ends,
             extra={"topic": topic, "partitions": sorted(partitions), "records": read})
    return read


def _fold(state: StateStore, checkpoint: str, records: Sequence[Record], fold: Fold) -> int:
    if not records:
        return 0
    after: dict[int, int] = {}
    for record in records:
        after[record.partition] = max(after.get(record.partition, 0), record.offset + 1)
    with state.transaction() as tx:
        fold(tx, records)
        for partition, offset in after.items():
            tx.advance(checkpoint, partition, offset)
    return len(records)
