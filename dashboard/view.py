"""The dashboard's view model: pure, no I/O, no locking (the feed serialises access).

``DashboardState.apply(event)`` folds one parsed event into counts, a bounded set of the latest
orders with their timeline, and the latest analytics snapshot per scope. Events of one order may
arrive in any order across topics; a redelivered event is not counted twice while its order is
still held. ``to_json()`` returns plain JSON types, money as strings.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from analytics_backend.aggregate import merge
from orderflow.events import CENT, AnalyticsSnapshot, EmailOutcome, OrderPlaced, OrderVerdict

DashboardEvent = OrderPlaced | OrderVerdict | EmailOutcome | AnalyticsSnapshot

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed")
_EMAIL_COUNTER = {"sent": "emails_sent", "failed": "emails_failed"}


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass
class Step:
    """One step of an order's timeline: a verdict or an email outcome."""

    status: str
    at: datetime
    detail: str | None = None  # the rejection reason, or the email error
    attempts: int | None = None


@dataclass
class OrderView:
    order_id: str
    sort_key: tuple[datetime, int]
    user_id: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    received_at: datetime | None = None
    received: bool = False
    verdict: Step | None = None
    email: Step | None = None

    @property
    def stage(self) -> str:
        if self.email is not None:
            return "emailed" if self.email.status == "sent" else "email_failed"
        if self.verdict is not None:
            return self.verdict.status
        return "received" if self.received else "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "user_id": self.user_id,
            "total": money(self.total),
            "currency": self.currency,
            "received_at": _iso(self.received_at),
            "stage": self.stage,
            "verdict": None if self.verdict is None else {
                "status": self.verdict.status, "reason": self.verdict.detail, "at": _iso(self.verdict.at)},
            "email": None if self.email is None else {
                "status": self.email.status, "error": self.email.detail, "attempts": self.email.attempts,
                "at": _iso(self.email.at)},
        }


@dataclass
class DashboardState:
    """Counts, the latest ``max_orders`` orders (by received time) and analytics per scope."""

    max_orders: int = 200
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    snapshots: dict[str, AnalyticsSnapshot] = field(default_factory=dict)
    _orders: dict[str, OrderView] = field(default_factory=dict, init=False, repr=False)
    _heap: list[tuple[tuple[datetime, int], str]] = field(default_factory=list, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError("max_orders must be at least 1")

    def apply(self, event: DashboardEvent) -> None:
        match event:
            case OrderPlaced():
                self._received(self._entry(event.order_id, event.time), event)
            case OrderVerdict():
                self._verdict(event)
            case EmailOutcome():
                self._email(event)
            case AnalyticsSnapshot():
                self.snapshots[event.scope] = event  # the latest value per key is the truth
            case _:
                raise TypeError(f"not a dashboard event: {type(event).__name__}")

    def apply_all(self, events: Iterable[DashboardEvent]) -> None:
        for event in events:
            self.apply(event)

    def order(self, order_id: str) -> OrderView | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> list[OrderView]:
        """Held orders, newest first."""
        return sorted(self._orders.values(), key=lambda o: o.sort_key, reverse=True)

    def to_json(self) -> dict[str, Any]:
        totals = merge(self.snapshots.values())
        return {
            "counts": dict(self.counts),
            "totals": {
                "orders": totals.orders_count,
                "rejected": totals.rejected_count,
                "revenue": money(totals.revenue),
                "average_order_value": money(totals.average_order_value),
                "per_day": [{"day": day.isoformat(), "orders": d.orders, "revenue": money(d.revenue)}
                            for day, d in sorted(totals.per_day.items(), reverse=True)],
                "scopes": len(self.snapshots),
            },
            "orders": [o.to_json() for o in self.orders()],
            "max_orders": self.max_orders,
        }

    # -- folding -------------------------------------------------------------------------------

    def _bump(self, counter: str, by: int = 1) -> None:
        self.counts[counter] += by

    def _entry(self, order_id: str, when: datetime) -> OrderView:
        entry = self._orders.get(order_id)
        if entry is None:
            self._seq += 1
            entry = OrderView(order_id, (when, self._seq))
            self._orders[order_id] = entry
            heapq.heappush(self._heap, (entry.sort_key, order_id))
            self._evict()
        return entry

    def _received(self, entry: OrderView, order: OrderPlaced) -> None:
        if entry.received_at is None:
            entry.user_id, entry.total = order.user_id, order.total
            entry.currency, entry.received_at = order.order_details.currency, order.time
            if entry.sort_key[0] != order.time:  # first seen through a later event: re-rank by receipt
                entry.sort_key = (order.time, entry.sort_key[1])
                heapq.heappush(self._heap, (entry.sort_key, entry.order_id))
        if not entry.received:
            entry.received = True
            self._bump("received")

    def _verdict(self, verdict: OrderVerdict) -> None:
        entry = self._entry(verdict.order_id, verdict.order.time)
        self._received(entry, verdict.order)  # a verdict proves the order was received
        self._step(entry, "verdict", verdict.status, verdict.status, verdict.occurred_at, verdict.reason)

    def _email(self, outcome: EmailOutcome) -> None:
        entry = self._entry(outcome.order_id, outcome.occurred_at)
        self._step(entry, "email", outcome.status, _EMAIL_COUNTER[outcome.status], outcome.occurred_at,
                   outcome.error, outcome.attempts)

    def _step(self, entry: OrderView, name: str, status: str, counter: str, at: datetime,
              detail: str | None, attempts: int | None = None) -> None:
        before: Step | None = getattr(entry, name)
        if before is not None and before.status == status:
            return  # redelivered: the first one stands
        if before is not None:  # a changed outcome moves the order from one counter to the other
            old = before.status if name == "verdict" else _EMAIL_COUNTER[before.status]
            self._bump(old, -1)
        self._bump(counter)
        setattr(entry, name, Step(status, at, detail, attempts))

    def _evict(self) -> None:
        while len(self._orders) > self.max_orders:
            key, order_id = heapq.heappop(self._heap)
            entry = self._orders.get(order_id)
            if entry is not None and entry.sort_key == key:  # skip stale heap items
                del self._orders[order_id]
        if len(self._heap) > 2 * self.max_orders + 64:
            self._heap = [(o.sort_key, o.order_id) for o in self._orders.values()]
            heapq.heapify(self._heap)
