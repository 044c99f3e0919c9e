"""From a validated request to the event that is published: pure."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from pydantic import ValidationError

from orderflow.events import CardPayment, OrderPlaced, OrderRequest, PaymentSummary


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def summarize(card: CardPayment) -> PaymentSummary:
    """What travels on Kafka: never the full card number."""
    return PaymentSummary(card_last4=card.card_number[-4:], expiry=card.expiry,
                          luhn_valid=luhn_valid(card.card_number))


def place(request: OrderRequest, now: datetime) -> OrderPlaced:
    return OrderPlaced(
        order_id=request.order_id or uuid4().hex,
        user_id=request.user_id,
        user_email=request.user_email,
        order_details=request.order_details,
        total=request.order_details.total,
        payment=summarize(request.payment) if request.payment else None,
        time=now,
        occurred_at=now,
    )


def same_order(a: OrderPlaced, b: OrderPlaced) -> bool:
    """Whether two placements describe the same order (what the customer asked for, not when)."""
    fields = {"order_id", "user_id", "user_email", "order_details", "total", "payment"}
    return a.model_dump(include=fields) == b.model_dump(include=fields)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem as ``{field, message, type}``, the field as a dotted path (``(body)`` for the whole)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
