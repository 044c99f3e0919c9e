"""Follow ``analytics_result`` (read_committed) and note every snapshot: when it was written, what it covers.

    python -m bench.observe --out FILE     # until SIGTERM; KAFKA_* from the environment

One line per snapshot: ``<partition> <as_of_offset> <timestamp_ms> <orders folded>``. Snapshots are
read as they are committed, so compaction of the topic (segment.ms 60 s) cannot remove one first.
"""

from __future__ import annotations

import argparse
import json
import signal

from orderflow.kafka import TopicPartition, make_consumer
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = KafkaSettings()
    topic = settings.topic(ANALYTICS_RESULT)
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=50)
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [0])]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    with open(args.out, "a") as out:
        while not stopped:
            for records in consumer.poll(timeout_ms=100).values():
                for r in records:
                    if r.value is None:
                        continue
                    snap = json.loads(r.value)
                    totals = snap["totals"]
                    out.write(f"{snap['partition']} {snap['as_of_offset']} {r.timestamp} "
                              f"{totals['orders_count'] + totals['rejected_count']}\n")
            out.flush()
    consumer.close(autocommit=False)


if __name__ == "__main__":
    main()
