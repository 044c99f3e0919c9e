"""decide(): the verdict on a placed order and every reason for a rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orderflow.events import OrderPlaced, OrderRequest
from orders_backend.orders import place
from transactions_backend.rules import Limits, decide, reasons_to_reject

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
VALID_CARD = "4111111111111111"


def order(*, price: Any = "100", items: list[dict[str, Any]] | None = None, card: str | None = None,
          expiry: str = "12/29", now: datetime = NOW) -> OrderPlaced:
    details = {"items": items} if items is not None else {"price": price}
    body: dict[str, Any] = {"user_id": "u1", "order_id": "o1", "user_email": "a@b.co", "order_details": details}
    if card is not None:
        body["payment"] = {"card_number": card, "expiry": expiry}
    return place(OrderRequest.model_validate_json(json.dumps(body)), now)


def line(quantity: int, unit_price: str = "1.00", product: str = "Widget") -> dict[str, Any]:
    return {"product": product, "quantity": quantity, "unit_price": unit_price}


def test_a_normal_order_is_confirmed() -> None:
    placed = order(items=[line(3, "19.99")], card=VALID_CARD)
    verdict = decide(placed)
    assert verdict.status == "confirmed"
    assert verdict.reason is None
    assert verdict.order_id == "o1"
    assert verdict.order == placed


def test_a_seed_order_without_payment_is_confirmed() -> None:
    assert decide(order()).status == "confirmed"


@pytest.mark.parametrize("placed", [
    order(price="10000.00"),
    order(items=[line(100)]),
    order(card=VALID_CARD, expiry="03/25"),
], ids=["total-at-limit", "quantity-at-limit", "card-valid-through-this-month"])
def test_boundaries_are_confirmed(placed: OrderPlaced) -> None:
    assert decide(placed).status == "confirmed"


@pytest.mark.parametrize(("placed", "reason"), [
    (order(price="10000.01"), "total 10000.01 exceeds the limit of 10000.00"),
    (order(items=[line(1), line(101, product="Bolt")]), "quantity 101 of 'Bolt' exceeds 100 per order"),
    (order(card="4111111111111112"), "card number fails the checksum"),
    (order(card=VALID_CARD, expiry="02/25"), "card expired 02/25"),
    (order(card=VALID_CARD, expiry="12/24"), "card expired 12/24"),
])
def test_rejected_with_the_reason(placed: OrderPlaced, reason: str) -> None:
    verdict = decide(placed)
    assert verdict.status == "rejected"
    assert verdict.reason == reason


def test_a_total_not_matching_the_lines_is_rejected() -> None:
    placed = order(items=[line(3, "19.99")]).model_copy(update={"total": Decimal("50.00")})
    verdict = decide(placed)
    assert verdict.status == "rejected"
    assert verdict.reason == "total 50.00 does not match the order's lines (59.97)"


def test_a_zero_total_is_rejected() -> None:
    placed = order().model_copy(update={"total": Decimal("0")})
    assert reasons_to_reject(placed, Limits())[0] == "total must be positive"


def test_several_reasons_are_joined_in_a_stable_order() -> None:
    placed = order(items=[line(200, "100.00")], card="4111111111111112")
    verdict = decide(placed)
    assert verdict.status == "rejected"
    assert verdict.reason == ("total 20000.00 exceeds the limit of 10000.00; "
                              "quantity 200 of 'Widget' exceeds 100 per order; "
                              "card number fails the checksum")


def test_limits_are_configurable() -> None:
    limits = Limits(max_order_total=Decimal("50.00"), max_quantity_per_item=2)
    verdict = decide(order(items=[line(3, "19.99")]), limits)
    assert verdict.reason == ("total 59.97 exceeds the limit of 50.00; "
                              "quantity 3 of 'Widget' exceeds 2 per order")


def test_expiry_is_judged_against_the_order_time_not_today() -> None:
    old = datetime(2020, 6, 1, tzinfo=UTC)
    assert decide(order(card=VALID_CARD, expiry="06/20", now=old)).status == "confirmed"
    assert decide(order(card=VALID_CARD, expiry="06/20")).status == "rejected"
