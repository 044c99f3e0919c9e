"""Dead letters from a shell: list them, or replay them into the topic they came from.

    python -m devtools.dlq list order_details            # what is in order_details.dlq, and why
    python -m devtools.dlq replay order_details          # send back each one not replayed yet

Replay remembers its place in the consumer group ``dlq-replay`` (see ``orderflow.kafka.deadletters``).
Settings come from ``KAFKA_*`` as for the services.
"""

from __future__ import annotations

import argparse
import logging
import sys

from orderflow.kafka import DeadLetter, access_at_start, dead_letters, replay
from orderflow.settings import KafkaSettings
from orderflow.topics import dlq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("topic", help="the source topic, e.g. order_details")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = KafkaSettings()
    access_at_start(settings)
    if args.command == "list":
        n = 0
        for record in dead_letters(settings, args.topic):
            n += 1
            d = DeadLetter.from_record(record)
            sys.stdout.write(f"{d.partition}/{d.offset}  key={d.key!r}  from {d.source} ({d.consumer_group})\n"
                             f"    error: {d.error[:300]}\n    value: {d.value!r}\n")
        sys.stdout.write(f"{n} dead letter(s) in {settings.topic(dlq(args.topic))}\n")
    else:
        sys.stdout.write(f"replayed {replay(settings, args.topic)} dead letter(s) into {settings.topic(args.topic)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
