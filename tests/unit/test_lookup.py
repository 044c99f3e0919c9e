"""The order lookup's answer, from one order's row in the store (built here by the store's own fold): pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderflow.events import EmailOutcome, OrderPlaced, OrderRequest, OrderVerdict
from orderflow.store import LoggedEvent, OrderRow, fold
from orders_backend.lookup import OrderStatus, order_status, reached
from orders_backend.orders import place

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ORDER = place(OrderRequest.model_validate({"user_id": 1, "order_id": "L-1", "user_email": "ada@example.com",
                                           "order_details": {"price": "12.50"}}), NOW)


def verdict(status: str, reason: str | None = None) -> OrderVerdict:
    return OrderVerdict(order_id="L-1", status=status, reason=reason, order=ORDER)  # type: ignore[arg-type]


EMAIL = EmailOutcome(order_id="L-1", status="sent", recipient="ada@example.com", message_id="<m@x>", attempts=1)


def status_of(*events: OrderPlaced | OrderVerdict | EmailOutcome) -> OrderStatus | None:
    row: OrderRow | None = None
    for offset, event in enumerate(events):
        row = fold(row, LoggedEvent.of(event, event.to_bytes(), 0, offset))
    assert row is not None
    return order_status(row)


def test_an_order_without_a_verdict_is_received() -> None:
    status = status_of(ORDER)
    assert status is not None and status.status == "received" and status.reason is None and status.email is None
    assert status.order == OrderPlaced.model_validate_json(ORDER.to_bytes())
    assert status.model_dump(mode="json")["order"]["total"] == "12.50"


def test_a_rejection_carries_its_reason() -> None:
    status = status_of(ORDER, verdict("rejected", "card expired"))
    assert status is not None and (status.status, status.reason) == ("rejected", "card expired")


def test_a_confirmed_and_emailed_order() -> None:
    status = status_of(ORDER, verdict("confirmed"), EMAIL)
    assert status is not None and status.status == "confirmed"
    assert status.email is not None and status.email.status == "sent"


@pytest.mark.parametrize(("verdict_value", "email", "until", "expected"), [
    (None, None, "received", True),
    (None, None, "decided", False),
    ("confirmed", None, "decided", True),
    ("confirmed", None, "emailed", False),
    ("confirmed", EMAIL, "emailed", True),
    ("rejected", None, "emailed", True),  # a rejected order gets no email: nothing more to wait for
])
def test_reached(verdict_value: str | None, email: EmailOutcome | None, until: str, expected: bool) -> None:
    status = status_of(ORDER, *([verdict(verdict_value)] if verdict_value else []), *([email] if email else []))
    assert reached(status, until) is expected  # type: ignore[arg-type]


def test_an_unknown_order_reaches_nothing() -> None:
    assert reached(None, "received") is False


def test_an_email_read_before_its_order_is_no_order_yet() -> None:
    assert status_of(EMAIL) is None
