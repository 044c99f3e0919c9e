"""Bounded reads: a range of offsets, a whole topic as of now, a consumer group's lag."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from orderflow.kafka.backoff import Backoff
from orderflow.kafka.clients import KafkaConsumer, Record, TopicPartition, make_admin, make_consumer
from orderflow.kafka.errors import KafkaError
from orderflow.settings import KafkaSettings


def read_range(consumer: KafkaConsumer, start: dict[TopicPartition, int], end: dict[TopicPartition, int], *,
               timeout: float = 30.0) -> Iterator[Record]:
    """The committed records of the assigned partitions ``start`` names, from ``start`` up to ``end`` (excluded).

    ``TimeoutError`` after ``timeout`` seconds without progress (no record and no position moved), however
    long the whole read takes.
    """
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    positions = {tp: consumer.position(tp) for tp in start}
    deadline = time.monotonic() + timeout
    while any(positions[tp] < end[tp] for tp in positions):
        if time.monotonic() > deadline:
            topics = sorted({tp.topic for tp in positions})
            raise TimeoutError(f"reading {', '.join(topics)} made no progress for {timeout}s")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                if r.offset < end[tp]:
                    yield Record.of(r)
        before, positions = positions, {tp: consumer.position(tp) for tp in positions}
        if positions != before:
            deadline = time.monotonic() + timeout


def read_topic(settings: KafkaSettings, topic: str, *, partitions: Iterable[int] | None = None,
               start: dict[int, int] | None = None, end: dict[int, int] | None = None,
               timeout: float = 30.0) -> Iterator[Record]:
    """Every committed record of ``topic`` (or of some partitions) from ``start`` (default: the
    beginning) up to ``end`` or, where ``end`` names no offset, up to its end now.

    Bounded: it stops at the end offsets taken when it starts, so it always terminates; ``TimeoutError``
    when it makes no progress for ``timeout`` seconds.
    """
    consumer = make_consumer(settings, group_id=None)
    try:
        if partitions is None:
            partitions = sorted(consumer.partitions_for_topic(topic) or set())
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return
        consumer.assign(tps)
        begin = consumer.beginning_offsets(tps)
        first = {tp: max(begin[tp], (start or {}).get(tp.partition, 0)) for tp in tps}
        now = consumer.end_offsets(tps)
        last = {tp: min(now[tp], (end or {}).get(tp.partition, now[tp])) for tp in tps}
        yield from read_range(consumer, first, last, timeout=timeout)
    finally:
        consumer.close(autocommit=False)


def end_offsets(consumer: KafkaConsumer, topic: str, partitions: int, timeout: float) -> dict[int, int]:
    """Every partition's end offset (the last stable one, for a read_committed consumer), in one request."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = consumer.end_offsets(tps, timeout_ms=int(timeout * 1000))
    return {tp.partition: int(offset) for tp, offset in ends.items()}


def group_lag(settings: KafkaSettings, group: str, topic: str, *, admin: Any = None, consumer: Any = None,
              timeout_ms: int = 10_000) -> dict[int, int]:
    """Per partition of ``topic``, how many records ``group`` has not committed yet: end offset − committed.

    ``group`` and ``topic`` are the unprefixed names (``settings`` adds the prefix). A partition the group
    never committed counts from its first retained offset. The end offset is the last stable one (this
    consumer reads ``read_committed``), so an open transaction is not counted as lag. Clients are made
    and closed here unless given (the dashboard reuses its own).
    """
    own_admin, own_consumer = admin is None, consumer is None
    admin = make_admin(settings) if admin is None else admin
    try:
        consumer = make_consumer(settings, group_id=None) if consumer is None else consumer
        name = settings.topic(topic)
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not tps:
            return {}
        deadline = time.monotonic() + timeout_ms / 1000
        backoff = Backoff(0.2, 1.0)
        while True:  # a fresh cluster answers "coordinator not available" while it makes its offsets topic
            try:
                committed = admin.list_group_offsets({settings.group(group): tps}).get(settings.group(group), {})
                break
            except KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                backoff.wait(time.sleep)
        begin, end = consumer.beginning_offsets(tps, timeout_ms), consumer.end_offsets(tps, timeout_ms)
        lag = {}
        for tp in tps:
            meta = committed.get(tp)
            done = max(meta.offset if meta is not None else -1, begin[tp])
            lag[tp.partition] = max(0, end[tp] - done)
        return lag
    finally:
        if own_consumer and consumer is not None:
            consumer.close(autocommit=False)
        if own_admin:
            admin.close()
