"""One order as the dashboard shows it: what was ordered and its timeline (pure, no I/O).

received → confirmed / rejected (with the reason) → emailed / email failed, with the time each
step took after the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from orderflow.events import CENT, OrderPlaced
from orderflow.fields import shown

ITEMS_KEPT = 20  # line items held per order; the rest is only counted (an order may have 100)
DETAILS_KEPT = 20  # the shop's own fields held per order, each shown in at most DETAIL_CHARS
DETAIL_CHARS = 200


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def took_ms(start: datetime | None, end: datetime) -> int | None:
    """Milliseconds from ``start`` to ``end``; never negative (clocks of two hosts may disagree a little)."""
    return None if start is None else max(0, round((end - start).total_seconds() * 1000))


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
    version: int = 0  # the state's version when this order last changed (for diffs)
    user_id: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    items: tuple[tuple[str, int, str], ...] = ()  # (product, quantity, unit price), at most ITEMS_KEPT
    more_items: int = 0
    details: tuple[tuple[str, str], ...] = ()  # the shop's own fields (product, size, notes...), as text
    received_at: datetime | None = None
    received: bool = False
    verdict: Step | None = None
    email: Step | None = None

    def describe(self, order: OrderPlaced) -> None:
        """Take what the order says about itself (first sight of its ``OrderPlaced``, or of its verdict)."""
        details = order.order_details
        self.user_id, self.total, self.currency = order.user_id, order.total, details.currency
        self.received_at = order.time
        items = details.items or ()
        self.items = tuple((i.product, i.quantity, str(i.unit_price.quantize(CENT))) for i in items[:ITEMS_KEPT])
        self.more_items = max(0, len(items) - ITEMS_KEPT)
        self.details = tuple((key, shown(value)[:DETAIL_CHARS])
                             for key, value in list(details.extras.items())[:DETAILS_KEPT])

    @property
    def stage(self) -> str:
        if self.email is not None:
            return "emailed" if self.email.status == "sent" else "email_failed"
        if self.verdict is not None:
            return self.verdict.status
        return "received" if self.received else "pending"

    def to_json(self) -> dict[str, Any]:
        verdict, email = self.verdict, self.email
        return {
            "order_id": self.order_id,
            "user_id": self.user_id,
            "total": money(self.total),
            "currency": self.currency,
            "items": [{"product": p, "quantity": q, "unit_price": u} for p, q, u in self.items],
            "more_items": self.more_items,
            "details": [{"key": k, "value": v} for k, v in self.details],
            "received_at": iso(self.received_at),
            "stage": self.stage,
            "verdict": None if verdict is None else {
                "status": verdict.status, "reason": verdict.detail, "at": iso(verdict.at),
                "took_ms": took_ms(self.received_at, verdict.at)},
            "email": None if email is None else {
                "status": email.status, "error": email.detail, "attempts": email.attempts, "at": iso(email.at),
                "took_ms": took_ms(verdict.at if verdict else self.received_at, email.at)},
        }
