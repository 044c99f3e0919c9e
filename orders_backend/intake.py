"""Taking an order in: one ``order_id`` is one order, published once, answered after the broker's ack.

``OrderIntake.submit`` is the whole of ``POST /order`` after validation, with its dependencies
given (the publisher and the placed orders, as the order store holds them), so it runs and is
tested without Flask. A server-made id is new by construction; a client's may be a repeat: one the
store holds is answered at once, without publishing (the same order again 200 with the first one,
another order under that id 409). Otherwise the order is published, and the first record under its
id in ``order_details`` is the order: the API waits until the store has read up to its own record
and answers 201 only when that first record is its own, so a repeat racing the first (from any
worker or replica) is still answered as a repeat.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from orderflow import metrics
from orderflow.errors import ServiceUnavailable
from orderflow.events import OrderPlaced
from orderflow.kafka import BrokerUnavailable, KafkaDown
from orderflow.tally import Tally
from orders_backend.access import public_order
from orders_backend.orders import same_order
from orders_backend.stored import StoreBehind

log = logging.getLogger(__name__)
tally = Tally(log, "orders published")

ID_LOCKS = 64


class Publisher(Protocol):
    def attempt(self) -> AbstractContextManager[None]: ...
    def publish(self, order: OrderPlaced) -> tuple[int, int]: ...


class PlacedOrders(Protocol):
    """``order_details`` by ``order_id``: the first order written under each id (``StoreBehind`` when
    that cannot be told in time)."""

    def wait_for(self, partition: int, offset: int, timeout: float) -> None: ...
    def peek(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class Answer:
    """What ``POST /order`` answers: a status, a JSON body (already encoded, or to encode) and headers."""

    status: int
    body: bytes | dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class OrderIntake:
    def __init__(self, publisher: Publisher, placed: PlacedOrders, *, timeout: float) -> None:
        self.publisher = publisher
        self.placed = placed
        self.timeout = timeout
        self._id_locks = [threading.Lock() for _ in range(ID_LOCKS)]

    def submit(self, order: OrderPlaced, *, client_id: bool) -> Answer:
        """The answer to this order; ``ServiceUnavailable`` when it cannot be taken now."""
        key = order.order_id.encode()
        with self._id_locks[hash(key) % ID_LOCKS]:  # the same id twice in this worker: one at a time
            try:
                with self.publisher.attempt():
                    return self._take(order, key, client_id=client_id)
            except KafkaDown as exc:
                log.warning("order %s not accepted: %s", order.order_id, exc, extra={"order_id": order.order_id})
                raise ServiceUnavailable(f"{exc}; nothing was stored, retry later",
                                         order_id=order.order_id) from exc

    def _take(self, order: OrderPlaced, key: bytes, *, client_id: bool) -> Answer:
        """A repeat the store already holds, or the order published, acknowledged and shown to be the first."""
        stored = self.placed.peek(key) if client_id else None
        if stored is not None:
            return self._repeat(OrderPlaced.model_validate_json(stored), stored, order)
        try:
            with metrics.PUBLISH_SECONDS.time():
                partition, offset = self.publisher.publish(order)
        except BrokerUnavailable as exc:
            log.warning("order %s not accepted: %s", order.order_id, exc, extra={"order_id": order.order_id})
            raise ServiceUnavailable(f"Kafka did not acknowledge order {order.order_id} in time; it may still "
                                     "have been stored, so retry with this order_id",
                                     order_id=order.order_id) from exc
        metrics.ORDERS_PUBLISHED.inc()
        if client_id:
            lost = self._first_wins(order, key, partition, offset)
            if lost is not None:
                return lost
        tally.note("created")
        log.debug("order %s published to partition %d at offset %d", order.order_id, partition, offset,
                  extra={"order_id": order.order_id, "outcome": "created", "partition": partition, "offset": offset,
                         "total": str(order.total)})
        return Answer(201, order.model_dump_json().encode(), {"Location": f"/order/{order.order_id}"})

    def _first_wins(self, order: OrderPlaced, key: bytes, partition: int, offset: int) -> Answer | None:
        """The log decides which order an id is: the first written under it. A client's id is answered
        201 only once the store, read up to this order's offset, shows this order as that first one;
        a repeat the store had not read yet when it arrived is answered here as a repeat (its record
        stays in the log, where every reader keeps the first)."""
        try:
            self.placed.wait_for(partition, offset, timeout=self.timeout)
        except StoreBehind as exc:
            log.warning("order %s stored, but not shown to be the first under its id: %s", order.order_id, exc,
                        extra={"order_id": order.order_id})
            raise ServiceUnavailable(f"order {order.order_id} was stored but could not be checked against an "
                                     "earlier order with this id; retry with this order_id",
                                     order_id=order.order_id) from exc
        stored = self.placed.peek(key)
        first = OrderPlaced.model_validate_json(stored) if stored is not None else order
        if first.event_id == order.event_id:
            return None
        return self._repeat(first, stored or b"", order)

    def _repeat(self, first: OrderPlaced, stored: bytes, order: OrderPlaced) -> Answer:
        if not same_order(first, order):
            log.info("order %s refused: id used by a different order", order.order_id,
                     extra={"order_id": order.order_id, "outcome": "conflict"})
            return Answer(409, {"error": "Conflict", "message": f"order_id {order.order_id} is already used by a "
                                "different order", "order": public_order(first.model_dump(mode="json"))})
        log.info("order %s repeated; answering the first", order.order_id,
                 extra={"order_id": order.order_id, "outcome": "duplicate"})
        return Answer(200, stored)
