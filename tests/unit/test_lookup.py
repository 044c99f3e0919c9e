"""The order lookup's answer, from the three topics' values of one order_id: pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderflow.events import EmailOutcome, OrderPlaced, OrderRequest, OrderVerdict
from orders_backend.lookup import order_status, reached
from orders_backend.orders import place

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ORDER = place(OrderRequest.model_validate({"user_id": 1, "order_id": "L-1", "user_email": "ada@example.com",
                                           "order_details": {"price": "12.50"}}), NOW)


def verdict(status: str, reason: str | None = None) -> bytes:
    return OrderVerdict(order_id="L-1", status=status, reason=reason, order=ORDER).to_bytes()  # type: ignore[arg-type]


EMAIL = EmailOutcome(order_id="L-1", status="sent", recipient="ada@example.com", message_id="<m@x>",
                     attempts=1).to_bytes()


def test_an_order_without_a_verdict_is_received() -> None:
    status = order_status(ORDER.to_bytes(), None, None)
    assert status.status == "received" and status.reason is None and status.email is None
    assert status.order == OrderPlaced.model_validate_json(ORDER.to_bytes())
    assert status.model_dump(mode="json")["order"]["total"] == "12.50"


def test_a_rejection_carries_its_reason() -> None:
    status = order_status(ORDER.to_bytes(), verdict("rejected", "card expired"), None)
    assert (status.status, status.reason) == ("rejected", "card expired")


def test_a_confirmed_and_emailed_order() -> None:
    status = order_status(ORDER.to_bytes(), verdict("confirmed"), EMAIL)
    assert status.status == "confirmed" and status.email is not None and status.email.status == "sent"


@pytest.mark.parametrize(("verdict_value", "email", "until", "expected"), [
    (None, None, "received", True),
    (None, None, "decided", False),
    ("confirmed", None, "decided", True),
    ("confirmed", None, "emailed", False),
    ("confirmed", EMAIL, "emailed", True),
    ("rejected", None, "emailed", True),  # a rejected order gets no email: nothing more to wait for
])
def test_reached(verdict_value: str | None, email: bytes | None, until: str, expected: bool) -> None:
    status = order_status(ORDER.to_bytes(), verdict(verdict_value) if verdict_value else None, email)
    assert reached(status, until) is expected  # type: ignore[arg-type]


def test_an_unknown_order_reaches_nothing() -> None:
    assert reached(None, "received") is False
