"""The business rules: a pure function from a placed order to its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from orderflow.events import OrderPlaced, OrderVerdict


@dataclass(frozen=True)
class Limits:
    max_order_total: Decimal = Decimal("10000.00")
    max_quantity_per_item: int = 100


def _card_expired(expiry: str, order: OrderPlaced) -> bool:
    month, year = (int(part) for part in expiry.split("/"))
    placed = order.time
    return (2000 + year, month) < (placed.year, placed.month)


def reasons_to_reject(order: OrderPlaced, limits: Limits) -> list[str]:
    """Every rule the order breaks, in a stable order; empty means it may be confirmed."""
    reasons = []
    if order.total <= 0:
        reasons.append("total must be positive")
    if order.total != order.order_details.total:
        reasons.append(f"total {order.total} does not match the order's lines ({order.order_details.total})")
    if order.total > limits.max_order_total:
        reasons.append(f"total {order.total} exceeds the limit of {limits.max_order_total}")
    for item in order.order_details.items or ():
        if item.quantity > limits.max_quantity_per_item:
            reasons.append(f"quantity {item.quantity} of '{item.product}' exceeds "
                           f"{limits.max_quantity_per_item} per order")
    if order.payment is not None:
        if not order.payment.luhn_valid:
            reasons.append("card number fails the checksum")
        elif _card_expired(order.payment.expiry, order):
            reasons.append(f"card expired {order.payment.expiry}")
    return reasons


def decide(order: OrderPlaced, limits: Limits = Limits()) -> OrderVerdict:
    reasons = reasons_to_reject(order, limits)
    if reasons:
        return OrderVerdict(order_id=order.order_id, status="rejected", reason="; ".join(reasons), order=order)
    return OrderVerdict(order_id=order.order_id, status="confirmed", order=order)
