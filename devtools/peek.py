"""The newest records of the pipeline's topics, from a shell (what the dashboard's ``/topics`` shows).

    python -m devtools.peek                      # every topic of the pipeline, 5 records each
    python -m devtools.peek order_details -n 20  # one topic

Settings come from ``KAFKA_*`` as for the services.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from orderflow.kafka import access_at_start, peek_topics
from orderflow.settings import KafkaSettings
from orderflow.topics import pipeline_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.peek", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topics", nargs="*", help="unprefixed topic names (default: all of the pipeline's)")
    parser.add_argument("-n", "--last", type=int, default=5, help="newest records per topic")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = KafkaSettings()
    access_at_start(settings)
    names = [settings.topic(t) for t in args.topics] or [
        s.name for s in pipeline_topics(settings.partitions, settings.topic_prefix)]
    for peek in peek_topics(settings, names, last=args.last):
        ends = ", ".join(f"{p}: {b}..{e}" for p, (b, e) in sorted(peek.offsets.items()))
        sys.stdout.write(f"{peek.name}  ({ends or 'no such topic'})\n")
        for r in peek.records:
            at = datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).isoformat(timespec="seconds")
            key = r.key.decode(errors="replace") if r.key else ""
            value = (r.value or b"").decode(errors="replace")
            sys.stdout.write(f"  [{r.partition}]@{r.offset} {at} key={key!r} {value[:300]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
