"""The Kafka edge of the API: one producer per worker process, created on first use."""

from __future__ import annotations

import threading
from typing import Any

from orderflow.events import OrderPlaced
from orderflow.kafka import BrokerUnavailable, KafkaError, make_producer, publish
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS


class OrderPublisher:
    def __init__(self, settings: KafkaSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.topic = settings.topic(ORDER_DETAILS)
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        # Created lazily: after gunicorn forks, and never at import.
        with self._lock:
            if self._producer is None:
                ms = int(self.timeout * 1000)
                try:
                    # The request waits ``timeout`` for the ack; the producer itself keeps the client's
                    # delivery timeout (two minutes). A batch that expires while in flight to a leader
                    # that died leaves kafka-python 3.0's idempotent producer unable to send again, so
                    # expiring them as soon as the request gives up stopped this worker for good at the
                    # first broker failure. A 503 already tells the client the order may still land.
                    self._producer = make_producer(
                        self.settings, max_block_ms=ms, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
                    )
                except KafkaError as exc:
                    raise BrokerUnavailable(f"cannot reach Kafka: {exc}") from exc
            return self._producer

    def publish(self, order: OrderPlaced) -> tuple[int, int]:
        """Return (partition, offset) once the broker has the order; raise BrokerUnavailable otherwise."""
        return publish(self._get(), self.topic, order.order_id, order.to_bytes(), timeout=self.timeout + 1)

    def connected(self) -> bool:
        """Whether this worker knows the topic's partitions (from the broker, possibly cached)."""
        try:
            return bool(self._get().partitions_for(self.topic))
        except (BrokerUnavailable, KafkaError):
            return False

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
