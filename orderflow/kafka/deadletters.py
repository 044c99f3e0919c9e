"""Dead letters: a record a consumer cannot read goes to ``<topic>.dlq`` with its original bytes,
and why, where from and who gave up in its headers (named here, and only here).

``replay`` sends them back to the topic they came from, remembering its place in the consumer group
``dlq-replay``, so a dead letter is normally replayed once however often it runs. At-least-once:
records are replayed first and the place is remembered after, so a replay that dies between the two
sends those records again (``replayed_from`` in their headers tells the copies apart).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orderflow.kafka.clients import TopicPartition, make_consumer, make_producer, offsets
from orderflow.kafka.reading import read_range, read_topic
from orderflow.kafka.records import Output, Record
from orderflow.settings import KafkaSettings
from orderflow.topics import dlq

log = logging.getLogger(__name__)

ERROR = "error"
SOURCE_TOPIC = "source_topic"
SOURCE_PARTITION = "source_partition"
SOURCE_OFFSET = "source_offset"
CONSUMER_GROUP = "consumer_group"
REPLAYED_FROM = "replayed_from"

REPLAY_GROUP = "dlq-replay"
REPLAY_CHUNK = 10_000  # records sent between two remembered places
MAX_ERROR_BYTES = 4000


def dead_letter(record: Record, error: str, group: str = "") -> Output:
    """The original bytes, with why, where from and who gave up in the headers."""
    headers = (
        (ERROR, error.encode()[:MAX_ERROR_BYTES]),
        (SOURCE_TOPIC, record.topic.encode()),
        (SOURCE_PARTITION, str(record.partition).encode()),
        (SOURCE_OFFSET, str(record.offset).encode()),
        (CONSUMER_GROUP, group.encode()),
    )
    return Output(dlq(record.topic), record.key, record.value or b"", headers)


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as people read it (headers decoded, key and value as text)."""

    partition: int
    offset: int
    timestamp_ms: int
    key: str
    error: str
    source: str  # "<topic>[<partition>]@<offset>"
    consumer_group: str
    value: str

    @classmethod
    def of(cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
           headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]], timestamp_ms: int = 0,
           value_chars: int = 200) -> DeadLetter:
        h = {k: v.decode(errors="replace") for k, v in headers}
        return cls(partition, offset, timestamp_ms, key.decode(errors="replace") if key else "",
                   h.get(ERROR, ""), f"{h.get(SOURCE_TOPIC, '?')}[{h.get(SOURCE_PARTITION, '?')}]"
                   f"@{h.get(SOURCE_OFFSET, '?')}", h.get(CONSUMER_GROUP, ""),
                   (value or b"")[:value_chars].decode(errors="replace"))

    @classmethod
    def from_record(cls, r: Record) -> DeadLetter:
        return cls.of(r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms)

    @classmethod
    def from_output(cls, out: Output) -> DeadLetter:
        return cls.of(out.topic, -1, -1, out.key_bytes, out.value, out.headers)


def dead_letters(settings: KafkaSettings, topic: str) -> Iterator[Record]:
    """Every dead letter of ``topic`` (unprefixed name) as of now."""
    return read_topic(settings, settings.topic(dlq(topic)))


def replay(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> int:
    """Send every not-yet-replayed dead letter of ``topic`` back to it; return how many (at-least-once).

    The dead-letter topic's partitions are assigned, not subscribed (no group to join, so no first
    poll that comes back empty), read from the group's committed offsets up to the end offsets taken
    at the start. Each record goes back with its original key, value and headers plus
    ``replayed_from``; once every send is acknowledged, the offsets are committed.
    """
    source, dead = settings.topic(topic), settings.topic(dlq(topic))
    consumer = make_consumer(settings, group_id=settings.group(REPLAY_GROUP))
    producer = make_producer(settings)
    try:
        tps = [TopicPartition(dead, p) for p in sorted(consumer.partitions_for_topic(dead) or ())]
        if not tps:
            log.warning("no topic %s: nothing to replay", dead)
            return 0
        consumer.assign(tps)
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        start = {tp: max(begin[tp], consumer.committed(tp) or 0) for tp in tps}
        sent: list[Any] = []
        place: dict[TopicPartition, int] = {}

        def remember(positions: dict[TopicPartition, int]) -> None:
            producer.flush(timeout=30)
            for future in sent:
                future.get(timeout=30)  # raises if a record was not written: the place is not moved
            sent.clear()
            if positions:
                consumer.commit(offsets(positions))

        count = 0
        for r in read_range(consumer, start, end, timeout=timeout):
            headers = [*r.headers, (REPLAYED_FROM, f"{r.partition}/{r.offset}".encode())]
            sent.append(producer.send(source, key=r.key, value=r.value, headers=headers))
            place[TopicPartition(r.topic, r.partition)] = r.offset + 1
            count += 1
            if len(sent) >= REPLAY_CHUNK:
                remember(place)
        remember({tp: end[tp] for tp in tps if end[tp] > start[tp]})  # past any trailing transaction marker
        return count
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
