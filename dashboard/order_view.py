"""One order as the dashboard shows it: what was ordered and its timeline (pure, no I/O).

received → confirmed / rejected (with the reason) → emailed / email failed, with the time each
step took after the one before it. Made from the order store's row of the order (``OrderView.of``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from orderflow.events import CENT, OrderPlaced
from orderflow.fields import shown
from orderflow.store.rows import OrderRow

ITEMS_KEPT = 20  # line items held per order; the rest is only counted (an order may have 100)
DETAILS_KEPT = 20  # the shop's own fields held per order, each shown in at most DETAIL_CHARS
DETAIL_CHARS = 200


def _more_than_one(quantity: str) -> bool:
    try:
        return float(quantity) > 1
    except ValueError:
        return False


def fingerprint(row: OrderRow) -> int:
    """Tells rows apart without reading their JSON: equal for the same change of the same order (in this
    process), and for another store's row only when it was made from the very same records."""
    return hash((row.order_id, row.seq, row.placed_json, row.verdict_json, row.email_json))


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
    """Equal when they show the same (the state's ``version`` and the store's ``seq`` aside)."""

    order_id: str
    sort_key: tuple[datetime, str]  # (order time, order_id): the order store's newest-first order
    version: int = field(default=0, compare=False)  # the state's version when this order last changed (for diffs)
    seq: int = field(default=0, compare=False)  # the store's change number of the row it was made from
    source: int = field(default=0, compare=False)  # ``fingerprint`` of that row
    user_id: str | None = None
    user_email: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    items: tuple[tuple[str, int, str], ...] = ()  # (product, quantity, unit price), at most ITEMS_KEPT
    more_items: int = 0
    details: tuple[tuple[str, str], ...] = ()  # the shop's own fields (product, size, notes...), as text
    received_at: datetime | None = None
    received: bool = False
    verdict: Step | None = None
    email: Step | None = None

    @classmethod
    def of(cls, row: OrderRow) -> OrderView | None:
        """The order as its store row has it; ``None`` while the row holds no order yet (an email outcome
        read before the order)."""
        order = row.order()
        if order is None:
            return None
        view = cls(row.order_id, (row.placed_at or order.time, row.order_id), seq=row.seq, source=fingerprint(row),
                   received=row.placed)
        view.describe(order)
        view.user_email = row.user_email
        if row.status != "received" and row.decided_at is not None:
            view.verdict = Step(row.status, row.decided_at, row.reason)
        if row.email_status is not None and row.emailed_at is not None:
            view.email = Step(row.email_status, row.emailed_at, row.email_error, row.email_attempts)
        return view

    def describe(self, order: OrderPlaced) -> None:
        """Take what the order says about itself (its ``OrderPlaced``, or the copy its verdict carries)."""
        details = order.order_details
        self.user_id, self.total, self.currency = order.user_id, order.total, details.currency
        self.user_email = order.user_email
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
            "user_email": self.user_email,
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

    def summary(self) -> str:
        """What was ordered, in one line: "Oak chair × 2, Lamp", or the shop's own fields of a
        single-price order ("chair × 2", "size: L, colour: oak"); as static/common.js writes it."""
        if self.items:
            parts = [f"{p} × {q}" if q > 1 else p for p, q, _ in self.items]
            return ", ".join([*parts, f"+{self.more_items} more"] if self.more_items else parts)
        details = dict(self.details)
        if product := details.get("product"):
            quantity = details.get("quantity", "")
            return f"{product} × {quantity}" if _more_than_one(quantity) else product
        shown_details = ", ".join(f"{k}: {v}" for k, v in self.details)
        return shown_details or ("single price" if self.total else "")
