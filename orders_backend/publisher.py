"""The Kafka edge of the API: one producer per worker process, created on first use."""

from __future__ import annotations

import logging
import threading
from typing import Any

from orderflow.events import OrderPlaced
from orderflow.kafka import BrokerUnavailable, KafkaError, make_producer, publish
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS

log = logging.getLogger(__name__)


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
                    self._producer = make_producer(
                        self.settings, max_block_ms=ms, request_timeout_ms=ms,
                        delivery_timeout_ms=ms + 1000, bootstrap_timeout_ms=ms,
                    )
                except KafkaError as exc:
                    raise BrokerUnavailable(f"cannot reach Kafka: {exc}") from exc
            return self._producer

    def publish(self, order: OrderPlaced) -> tuple[int, int]:
        """Return (partition, offset) once the broker has the order; raise BrokerUnavailable otherwise."""
        producer = self._get()
        try:
            return publish(producer, self.topic, order.order_id, order.to_bytes(), timeout=self.timeout + 1)
        except BrokerUnavailable:
            self._replace(producer)
            raise

    def _replace(self, producer: Any) -> None:
        """Drop a producer that failed to deliver; the next order gets a new one.

        kafka-python 3.0's idempotent producer whose batch expires while in flight to a leader that
        died may never send again (a worker then answered 503 for minutes after one broker's death).
        Its unsent orders are dropped with it, as their requests were already answered 503.
        """
        with self._lock:
            if self._producer is not producer:
                return  # another request replaced it already
            self._producer = None
        threading.Thread(target=self._close, args=(producer,), name="kafka-producer-close", daemon=True).start()

    def _close(self, producer: Any) -> None:
        # Its batches expire within the delivery timeout (the publish timeout + 1 s); kafka-python's
        # close gives up, half done, if they have not by then.
        try:
            producer.close(timeout=self.timeout + 3)
        except KafkaError as exc:
            log.warning("a replaced Kafka producer did not close: %s", exc)

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
