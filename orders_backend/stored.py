"""The orders API's view of the order store, with read-your-writes.

The store lags the topics by the projector's latency. So a request that finds no order asks the end
offset of the order's partition of ``order_details`` (``orderflow.kafka.EndOffsets``) and waits until
the store has read that far: an order Kafka acknowledged before the request started, through any
worker or API replica, is then found. No worker consumes a topic.
"""

from __future__ import annotations

from orderflow.kafka import EndOffsets, KafkaError
from orderflow.store import OrderRow, OrderStore


class StoreBehind(Exception):
    """The store could not be shown to hold every acknowledged order in time (the projector is down or
    far behind, or Kafka cannot say where its partition ends)."""


class StoredOrders:
    def __init__(self, store: OrderStore, ends: EndOffsets) -> None:
        self.store = store
        self.ends = ends
        self.topic = ends.topic

    def row(self, order_id: str, timeout: float) -> OrderRow | None:
        """The order's row once it is known (placed, or decided), reading its own and others' writes."""
        found = self.store.get(order_id)
        if found is not None and found.order() is not None:
            return found
        key = order_id.encode()
        try:
            partition = self.ends.partition_of(key, timeout)
            end = self.ends.end(partition, timeout)
        except (KafkaError, TimeoutError) as exc:
            raise StoreBehind(f"cannot tell where {self.topic} ends: {exc}") from exc
        if end:
            self.wait_for(partition, end - 1, timeout)
        found = self.store.get(order_id)
        return found if found is not None and found.order() is not None else None

    def wait_for(self, partition: int, offset: int, timeout: float) -> None:
        """Return once the store holds ``order_details`` up to ``offset`` of ``partition``."""
        if not self.store.wait_past(self.topic, partition, offset, timeout):
            raise StoreBehind(f"the order store has not read {self.topic}/{partition} up to {offset} "
                              f"after {timeout:g}s")

    def peek(self, key: bytes) -> bytes | None:
        """The first order placed under ``key``, as written, from what the store holds now (no wait)."""
        return _first(self.store.get(key.decode()))


def _first(row: OrderRow | None) -> bytes | None:
    if row is None:
        return None
    if row.placed_json is not None:
        return row.placed_json.encode()
    order = row.order()  # decided before its placement was read: the order its verdict carries
    return None if order is None else order.to_bytes()
