"""The client ceiling of a stage: consume -> produce with no logic, kafka-python with our settings.

    python -m bench.rawloop --input T --output T2 --group G [--eos]

Same clients as ``orderflow.kafka.Stage`` (``make_consumer``/``make_producer``, linger 10 ms, retry backoff, static
membership, ``max_batch`` records per poll); each polled batch is copied to the output as is and
committed, in one transaction with ``--eos`` or flush-then-commit without. Runs until SIGTERM.
``BENCH_NO_CRC32C=1`` hides the C ``crc32c`` module so kafka-python falls back to pure Python.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

if os.environ.get("BENCH_NO_CRC32C") == "1":
    sys.modules["crc32c"] = None  # type: ignore[assignment]  # import fails -> kafka-python's pure-Python CRC

from kafka import OffsetAndMetadata, TopicPartition  # noqa: E402 - after the crc32c switch

from orderflow.kafka import make_consumer, make_producer  # noqa: E402
from orderflow.kafka.writers import RETRY_BACKOFF_MS  # noqa: E402
from orderflow.settings import KafkaSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--eos", action="store_true")
    args = parser.parse_args()
    settings = KafkaSettings()
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    producer = make_producer(settings, transactional_id=f"{args.group}-raw" if args.eos else None, linger_ms=10,
                             retry_backoff_ms=RETRY_BACKOFF_MS)
    consumer = make_consumer(settings, group_id=args.group, group_instance_id=f"{args.group}-raw",
                             session_timeout_ms=settings.session_timeout_ms)
    try:
        if args.eos:
            producer.init_transactions()
        consumer.subscribe([args.input])
        while not stopped:
            polled = consumer.poll(timeout_ms=settings.poll_timeout_ms, max_records=settings.max_batch)
            if not polled:
                continue
            offsets = {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(records[-1].offset + 1, "", -1)
                       for tp, records in polled.items()}
            if args.eos:
                producer.begin_transaction()
            for records in polled.values():
                for r in records:
                    producer.send(args.output, key=r.key, value=r.value)
            if args.eos:
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                producer.commit_transaction()
            else:
                producer.flush()
                consumer.commit(offsets)
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)


if __name__ == "__main__":
    main()
