"""The Kafka edge of the API: one ``RecordPublisher`` per worker process, its producer made on first use."""

from __future__ import annotations

from contextlib import AbstractContextManager

from orderflow.events import OrderPlaced
from orderflow.kafka import RecordPublisher
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS


class OrderPublisher:
    def __init__(self, settings: KafkaSettings, timeout: float) -> None:
        self.records = RecordPublisher(settings, settings.topic(ORDER_DETAILS), timeout=timeout)

    def attempt(self) -> AbstractContextManager[None]:
        """Around a request's work with Kafka: refused at once (``KafkaDown``) while Kafka is down and
        another request is already trying."""
        return self.records.attempt()

    def publish(self, order: OrderPlaced) -> tuple[int, int]:
        """Return (partition, offset) once the broker has the order; raise BrokerUnavailable otherwise."""
        return self.records.publish(order.order_id, order.to_bytes())

    def unready(self) -> str | None:
        """Why this worker cannot have an order acknowledged now, or None when it can."""
        return self.records.ready()

    def connect(self) -> None:
        self.records.connect()

    def close(self) -> None:
        self.records.close()
