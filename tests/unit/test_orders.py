"""From a validated request to the published OrderPlaced: Luhn, card summary, order ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orderflow.events import CardPayment, OrderRequest
from orders_backend.orders import luhn_valid, place, same_order, summarize

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def request(**changes: Any) -> OrderRequest:
    data = {"user_id": 1, "order_id": 7, "user_email": "a@b.co", "order_details": {"price": 100}, **changes}
    return OrderRequest.model_validate_json(json.dumps({k: v for k, v in data.items() if v is not None}))


@pytest.mark.parametrize("number", [
    "4111111111111111", "79927398713", "5555555555554444", "378282246310005", "4012888888881881",
])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number) is True


@pytest.mark.parametrize("number", [
    "4111111111111112", "79927398710", "79927398714", "1234567812345678", "4111111111111121",
])
def test_luhn_rejects_invalid_numbers(number: str) -> None:
    assert luhn_valid(number) is False


def test_summary_keeps_only_the_last_four_digits() -> None:
    summary = summarize(CardPayment(card_number="4111 1111 1111 1234", expiry="09/27"))
    assert summary.card_last4 == "1234"
    assert summary.expiry == "09/27"
    assert summary.luhn_valid is False
    assert "41111111" not in summary.model_dump_json()


def test_summary_of_a_valid_card() -> None:
    assert summarize(CardPayment(card_number="4111111111111111", expiry="12/29")).luhn_valid is True


def test_place_keeps_the_given_order_id() -> None:
    order = place(request(), NOW)
    assert order.order_id == "7"
    assert (order.user_id, order.user_email) == ("1", "a@b.co")
    assert order.total == Decimal("100.00")
    assert order.time == NOW
    assert order.occurred_at == NOW
    assert order.payment is None


def test_place_generates_distinct_order_ids_when_omitted() -> None:
    first = place(request(order_id=None), NOW)
    second = place(request(order_id=None), NOW)
    assert first.order_id and second.order_id
    assert first.order_id != second.order_id


def test_place_never_publishes_the_card_number() -> None:
    order = place(request(payment={"card_number": "4111111111111111", "expiry": "12/29"}), NOW)
    assert order.payment is not None
    assert order.payment.card_last4 == "1111"
    assert order.payment.luhn_valid is True
    assert b"4111111111111111" not in order.to_bytes()


def test_place_total_of_items() -> None:
    details = {"items": [{"product": "Pen", "quantity": 3, "unit_price": "19.99"},
                         {"product": "Pad", "quantity": 2, "unit_price": "0.05"}]}
    assert place(request(order_details=details), NOW).total == Decimal("60.07")


def test_same_order_ignores_when_it_was_placed() -> None:
    later = datetime(2025, 3, 16, tzinfo=UTC)
    assert same_order(place(request(), NOW), place(request(), later))


@pytest.mark.parametrize("changes", [
    {"user_email": "c@d.co"}, {"user_id": 2}, {"order_details": {"price": 101}},
    {"payment": {"card_number": "4111111111111111", "expiry": "12/29"}},
])
def test_same_order_sees_a_different_request(changes: dict[str, Any]) -> None:
    assert not same_order(place(request(), NOW), place(request(**changes), NOW))
