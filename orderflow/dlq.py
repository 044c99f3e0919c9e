"""Dead letters: list them, or replay them into the topic they came from.

    python -m orderflow.dlq list order_details            # what is in order_details.dlq, and why
    python -m orderflow.dlq replay order_details          # send each dead letter back, once

Replay remembers its place with the consumer group ``dlq-replay``, so a dead letter is replayed
once however often the command runs. Settings come from ``KAFKA_*`` as for the services.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator

from orderflow.kafka_io import OffsetAndMetadata, Record, TopicPartition, make_consumer, make_producer, read_topic
from orderflow.settings import KafkaSettings
from orderflow.topics import dlq

log = logging.getLogger(__name__)
REPLAY_GROUP = "dlq-replay"


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


def replay(settings: KafkaSettings, topic: str, timeout_ms: int = 2000) -> int:
    """Send every not-yet-replayed dead letter of ``topic`` back to it; return how many."""
    source = settings.topic(topic)
    consumer = make_consumer(settings, group_id=settings.group(REPLAY_GROUP))
    producer = make_producer(settings)
    count = 0
    try:
        consumer.subscribe([settings.topic(dlq(topic))])
        while True:
            polled = consumer.poll(timeout_ms=timeout_ms)
            if not polled:
                return count
            offsets = {}
            for tp, records in polled.items():
                for r in records:
                    headers = list(r.headers or ()) + [("replayed_from", f"{tp.partition}/{r.offset}".encode())]
                    producer.send(source, key=r.key, value=r.value, headers=headers)
                    count += 1
                offsets[TopicPartition(tp.topic, tp.partition)] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            producer.flush(timeout=30)  # replayed before the place is remembered: at-least-once
            consumer.commit(offsets)
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
