"""``GET /order/<order_id>``: one order and how far it got, from the order store.

The store holds one row per order (placed, verdict, email); ``stored.StoredOrders`` reads it with
read-your-writes, so an order acknowledged before the request started is found.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from flask import Flask, g, jsonify, request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from spectree import Response as Documented
from spectree import SpecTree

from orderflow import web
from orderflow.errors import ServiceUnavailable
from orderflow.events import EmailOutcome, OrderPlaced
from orderflow.fields import is_identifier
from orderflow.store import OrderRow
from orders_backend.access import ApiKeys, public_status
from orders_backend.apidoc import ApiKeyRequired, EmailSeen, InvalidRequest, OrderSeen, Problem
from orders_backend.orders import field_errors
from orders_backend.settings import Settings
from orders_backend.stored import StoreBehind, StoredOrders

MAX_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.2
Until = Literal["received", "decided", "emailed"]


def _one(value: object) -> object:
    # A query parameter given twice is ambiguous: refused, not silently the first.
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError("give this parameter once")
        return value[0]
    return value


class OrderStatusSeen(BaseModel):
    """``GET /order/<id>``: the customer's address and card details only when the order's owner asks."""

    order: OrderSeen
    status: Literal["received", "confirmed", "rejected"]
    reason: str | None = None
    email: EmailSeen | None = None


class LookupQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: Annotated[float, BeforeValidator(_one)] = Field(
        0, ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait, at most, for the order to reach `until`")
    until: Annotated[Until, BeforeValidator(_one)] = Field(
        "received", description="received: the order is stored; decided: confirmed or rejected; "
        "emailed: its email is sent or failed (a rejected order gets none)")


class OrderStatus(BaseModel):
    """An order as stored, its verdict (``received`` while there is none) and its email outcome.

    Its owner sees all of it; anyone else ``access.public_status`` of it."""

    order: OrderPlaced
    status: Literal["received", "confirmed", "rejected"]
    reason: str | None = None
    email: EmailOutcome | None = None


def order_status(row: OrderRow) -> OrderStatus | None:
    """Pure: one order's row in the store, as one answer (None while it holds no order yet)."""
    order = row.order()
    if order is None:
        return None
    return OrderStatus(order=order, status=row.status, reason=row.reason, email=row.email())


def reached(status: OrderStatus | None, until: Until) -> bool:
    if status is None:
        return False
    if until == "decided":
        return status.status != "received"
    if until == "emailed":
        return status.email is not None or status.status == "rejected"
    return True


class OrderLookup:
    def __init__(self, settings: Settings, orders: StoredOrders, keys: ApiKeys) -> None:
        self.keys = keys
        self.timeout = settings.publish_timeout_seconds
        self.orders = orders

    def find(self, order_id: str) -> OrderStatus | None:
        """The order's state as of now; ``StoreBehind`` when that cannot be told in time."""
        row = self.orders.row(order_id, self.timeout)
        return None if row is None else order_status(row)

    def wait_for(self, order_id: str, until: Until, wait: float) -> OrderStatus | None:
        """``find`` until the order reaches ``until`` or ``wait`` seconds pass; the last state seen."""
        deadline = time.monotonic() + wait
        while True:
            status = self.find(order_id)
            remaining = deadline - time.monotonic()
            if reached(status, until) or remaining <= 0:
                return status
            time.sleep(min(POLL_SECONDS, remaining))

    def init_app(self, app: Flask, api: SpecTree) -> None:
        """Attach ``GET /order/<order_id>``."""

        @app.get("/order/<order_id>")
        @api.validate(query=LookupQuery, skip_validation=True,
                      path_parameter_descriptions={"order_id": "the order's id"},
                      resp=Documented(HTTP_200=OrderStatusSeen, HTTP_401=ApiKeyRequired, HTTP_404=Problem,
                                      HTTP_422=InvalidRequest,
                                      HTTP_503=(Problem, "The order store could not be read in time; retry.")))
        def get_order(order_id: str) -> Any:
            """One order and its status across the topics (``?wait=`` seconds for a just-posted one)."""
            try:
                query = LookupQuery.model_validate(request.args.to_dict(flat=False))
            except ValidationError as exc:
                return web.problem(422, "Invalid query", details=field_errors(exc))
            if not is_identifier(order_id):  # no order can have it: no need to look
                return web.problem(404, "Not Found", message="no order has this id")
            try:
                status = self.wait_for(order_id, query.until, query.wait)
            except StoreBehind as exc:
                raise ServiceUnavailable(f"cannot read the order store in time: {exc}") from exc
            owner = g.get("customer")
            if status is None or (self.keys.required and status.order.user_id != owner):
                return web.problem(404, "Not Found", message=f"no order {order_id}")  # others' orders likewise
            shown = status.model_dump(mode="json")
            return jsonify(shown if owner is not None else public_status(shown))
