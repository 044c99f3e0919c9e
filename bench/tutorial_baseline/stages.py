"""The tutorial's three consumers: ``python -m bench.tutorial_baseline.stages transactions|email|analytics``.

Each is a ``KafkaConsumer`` with no group id and a ``json.loads`` deserializer, iterating
``for message in consumer`` and sending once per message, as the tutorial does.
"""

from __future__ import annotations

import json
import os
import sys

from kafka import KafkaConsumer, KafkaProducer

PREFIX = os.environ.get("KAFKA_TOPIC_PREFIX", "")
SERVERS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def consumer(topic: str) -> KafkaConsumer:
    return KafkaConsumer(PREFIX + topic, bootstrap_servers=SERVERS, value_deserializer=lambda v: json.loads(v))


def producer() -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=SERVERS, value_serializer=lambda v: json.dumps(v).encode("utf-8"))


def send_email(order: dict[str, object]) -> None:
    print(f"Sending email to {order['user_email']}")  # noqa: T201 - the tutorial's email only prints


def main(stage: str) -> None:
    out = producer()
    if stage == "transactions":
        for message in consumer("order_details"):
            out.send(PREFIX + "order_confirmed", {**message.value, "status": "confirmed"})
    elif stage == "email":
        for message in consumer("order_confirmed"):
            send_email(message.value)
            out.send(PREFIX + "order_email_sent", {**message.value, "status": True})
    elif stage == "analytics":
        total_revenue, total_orders_count = 0, 0
        for message in consumer("order_confirmed"):
            total_revenue += int(message.value["order_details"]["price"])
            total_orders_count += 1
            out.send(PREFIX + "analytics_result",
                     {"total_revenue": total_revenue, "total_orders_count": total_orders_count})


if __name__ == "__main__":
    main(sys.argv[1])
