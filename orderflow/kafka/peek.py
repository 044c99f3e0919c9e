"""A look at topics for people (the dashboard's topic view): offsets and the newest records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orderflow.kafka.clients import TopicPartition, make_consumer
from orderflow.kafka.reading import read_range
from orderflow.kafka.records import Record
from orderflow.settings import KafkaSettings


@dataclass
class TopicPeek:
    """A topic as a person looks at it: offsets per partition and its newest records."""

    name: str
    offsets: dict[int, tuple[int, int]]  # partition -> (first retained offset, end offset)
    records: list[Record]  # newest first


def peek_topics(settings: KafkaSettings, topics: Iterable[str], *, last: int = 5,
                timeout: float = 5.0) -> list[TopicPeek]:
    """Offsets and the ``last`` newest committed records of each topic (full names), in one bounded read."""
    consumer = make_consumer(settings, group_id=None, bootstrap_timeout_ms=int(timeout * 1000))
    try:
        peeks = {name: TopicPeek(name, {}, []) for name in topics}
        tps = [TopicPartition(name, p) for name in peeks for p in sorted(consumer.partitions_for_topic(name) or ())]
        if tps:
            begin = consumer.beginning_offsets(tps, int(timeout * 1000))
            end = consumer.end_offsets(tps, int(timeout * 1000))
            consumer.assign(tps)
            for tp in tps:
                peeks[tp.topic].offsets[tp.partition] = (begin[tp], end[tp])
            start = {tp: max(begin[tp], end[tp] - last) for tp in tps}
            try:
                for r in read_range(consumer, start, end, timeout=timeout):
                    peeks[r.topic].records.append(r)
            except TimeoutError:
                pass  # a partition that stalls: show what was read
        for peek in peeks.values():
            peek.records = sorted(peek.records, key=lambda r: (r.timestamp_ms, r.offset), reverse=True)[:last]
        return list(peeks.values())
    finally:
        consumer.close(autocommit=False)
