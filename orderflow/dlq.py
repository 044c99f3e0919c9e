"""Dead letters: list them, or replay them into the topic they came from.

    python -m orderflow.dlq list order_details            # what is in order_details.dlq, and why
    python -m orderflow.dlq replay order_details          # send back each one not replayed yet

Replay remembers its place in the consumer group ``dlq-replay``, so a dead letter is normally
replayed once however often the command runs. At-least-once: records are replayed first and the
place is remembered after, so a replay that dies between the two sends those records again
(``replayed_from`` in their headers tells the copies apart). Settings come from ``KAFKA_*`` as for
the services.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from typing import Any

from orderflow.kafka_io import (
    OffsetAndMetadata,
    Record,
    TopicPartition,
    make_consumer,
    make_producer,
    read_range,
    read_topic,
)
from orderflow.settings import KafkaSettings
from orderflow.topics import dlq

log = logging.getLogger(__name__)
REPLAY_GROUP = "dlq-replay"
REPLAY_CHUNK = 10_000  # records sent between two remembered places


def describe(record: Record) -> dict[str, str]:
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    return {
        "dlq_offset": f"{record.partition}/{record.offset}",
        "key": record.key.decode(errors="replace") if record.key else "",
        "source": f"{headers.get('source_topic', '?')}/{headers.get('source_partition', '?')}"
                  f"@{headers.get('source_offset', '?')}",
        "consumer_group": headers.get("consumer_group", ""),
        "error": headers.get("error", ""),
        "value": (record.value or b"")[:200].decode(errors="replace"),
    }


def dead_letters(settings: KafkaSettings, topic: str) -> Iterator[Record]:
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

        def remember(offsets: dict[TopicPartition, int]) -> None:
            producer.flush(timeout=30)
            for future in sent:
                future.get(timeout=30)  # raises if a record was not written: the place is not moved
            sent.clear()
            if offsets:
                consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})

        count = 0
        for r in read_range(consumer, start, end, timeout=timeout):
            headers = [*r.headers, ("replayed_from", f"{r.partition}/{r.offset}".encode())]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orderflow.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("topic", help="the source topic, e.g. order_details")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = KafkaSettings()
    if args.command == "list":
        n = 0
        for record in dead_letters(settings, args.topic):
            n += 1
            d = describe(record)
            sys.stdout.write(f"{d['dlq_offset']}  key={d['key']!r}  from {d['source']} ({d['consumer_group']})\n"
                             f"    error: {d['error'][:300]}\n    value: {d['value']!r}\n")
        sys.stdout.write(f"{n} dead letter(s) in {settings.topic(dlq(args.topic))}\n")
    else:
        sys.stdout.write(f"replayed {replay(settings, args.topic)} dead letter(s) into {settings.topic(args.topic)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
