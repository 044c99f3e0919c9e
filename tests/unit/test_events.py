"""OrderRequest validation as the API parses it (from bytes), and Decimal money on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from orderflow.events import OrderPlaced, OrderRequest, utcnow
from orderflow.jsonbody import MalformedJson
from orders_backend.orders import place

SEED: dict[str, Any] = {"user_id": 1, "order_id": 7, "user_email": "a@b.co", "order_details": {"price": 100}}
NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def body(**changes: Any) -> dict[str, Any]:
    """The seed body with top-level fields replaced (``None`` removes one)."""
    data = {**SEED, **changes}
    return {k: v for k, v in data.items() if v is not None}


def item(product: str = "Widget", quantity: Any = 1, unit_price: Any = "1.00") -> dict[str, Any]:
    return {"product": product, "quantity": quantity, "unit_price": unit_price}


def items(*lines: dict[str, Any]) -> dict[str, Any]:
    return {"order_details": {"items": list(lines)}}


def card(number: Any = "4111 1111 1111 1111", expiry: Any = "12/29") -> dict[str, Any]:
    return {"payment": {"card_number": number, "expiry": expiry}}


def parse(data: dict[str, Any]) -> OrderRequest:
    return OrderRequest.from_json(json.dumps(data).encode())


def test_seed_body_is_accepted_and_ids_become_strings() -> None:
    req = parse(SEED)
    assert (req.user_id, req.order_id) == ("1", "7")
    assert req.user_email == "a@b.co"
    assert req.order_details.price == Decimal("100")
    assert req.order_details.total == Decimal("100.00")
    assert req.payment is None


def test_items_total_is_exact_decimal() -> None:
    raw = b'{"user_id": "u1", "user_email": "a@b.co", "order_details": {"items": [' \
          b'{"product": "Pen", "quantity": 3, "unit_price": 19.99}]}}'
    details = OrderRequest.model_validate_json(raw).order_details
    assert details.total == Decimal("59.97")
    assert str(details.total) == "59.97"
    assert type(details.total) is Decimal


def test_items_total_sums_several_lines() -> None:
    req = parse(body(**items(item("A", 3, "0.10"), item("B", 7, "1.01"), item("C", 1, 0.2))))
    assert req.order_details.total == Decimal("7.57")


def test_client_time_is_ignored() -> None:
    req = parse(body(time="1999-01-01T00:00:00Z"))
    assert "time" not in req.model_dump()


def test_order_id_is_optional() -> None:
    assert parse(body(order_id=None)).order_id is None


def test_card_number_spaces_and_dashes_are_stripped() -> None:
    req = parse(body(**card("4111-1111 1111-1111", "01/30")))
    assert req.payment is not None
    assert req.payment.card_number == "4111111111111111"


@pytest.mark.parametrize("changes", [
    {"order_details": {"price": "1000000"}},
    {"order_details": {"price": "0.01"}},
    {"order_details": {"price": "19.90", "currency": "EUR"}},
    items(*[item(quantity=10_000)] * 100),
], ids=["price-at-max", "price-one-cent", "currency", "100-items-max-quantity"])
def test_boundaries_are_accepted(changes: dict[str, Any]) -> None:
    assert parse(body(**changes)).order_details.total > 0


@pytest.mark.parametrize(("changes", "loc"), [
    ({"user_id": None}, ("user_id",)),
    ({"user_email": None}, ("user_email",)),
    ({"order_details": None}, ("order_details",)),
    ({"user_id": True}, ("user_id",)),
    ({"user_id": 1.5}, ("user_id",)),
    ({"user_id": ""}, ("user_id",)),
    ({"order_id": "has space"}, ("order_id",)),
    ({"user_email": "not-an-email"}, ("user_email",)),
    ({"user_email": "a@"}, ("user_email",)),
    ({"order_details": {"price": -1}}, ("order_details", "price")),
    ({"order_details": {"price": 0}}, ("order_details", "price")),
    ({"order_details": {"price": "1000000.01"}}, ("order_details", "price")),
    ({"order_details": {"price": "19.999"}}, ("order_details", "price")),
    ({"order_details": {"price": "abc"}}, ("order_details", "price")),
    ({"order_details": {"price": "NaN"}}, ("order_details", "price")),
    ({"order_details": {"price": 1, "currency": "usd"}}, ("order_details", "currency")),
    ({"order_details": {"price": 1, "items": [item()]}}, ("order_details",)),
    ({"order_details": {}}, ("order_details",)),
    ({"order_details": {"items": []}}, ("order_details", "items")),
    ({"order_details": {"items": [item()] * 101}}, ("order_details", "items")),
    ({"coupon": "FREE"}, ("coupon",)),
    (items(item(quantity="2")), ("order_details", "items", 0, "quantity")),
    (items(item(quantity=True)), ("order_details", "items", 0, "quantity")),
    (items(item(quantity=2.5)), ("order_details", "items", 0, "quantity")),
    (items({**item(), "colour": "red"}), ("order_details", "items", 0, "colour")),
    (items(item(), item(quantity=0)), ("order_details", "items", 1, "quantity")),
    (items(item(quantity=10_001)), ("order_details", "items", 0, "quantity")),
    (items(item(unit_price="abc")), ("order_details", "items", 0, "unit_price")),
    (items(item(product="   ")), ("order_details", "items", 0, "product")),
    (items({"product": "x", "quantity": 1}), ("order_details", "items", 0, "unit_price")),
    (card(number="4111 1111 1111 111x"), ("payment", "card_number")),
    (card(number="12345"), ("payment", "card_number")),
    (card(number=4111111111111111), ("payment", "card_number")),
    (card(expiry="13/25"), ("payment", "expiry")),
    (card(expiry="1/25"), ("payment", "expiry")),
    (card(expiry="12/2029"), ("payment", "expiry")),
])
def test_rejected_with_error_at_the_bad_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body(**changes))
    assert [err["loc"] for err in caught.value.errors()] == [loc]


def test_not_json_is_a_json_error() -> None:
    with pytest.raises(MalformedJson, match="line 1 column 15"):
        OrderRequest.from_json(b'{"user_id": 1,')


def test_a_quantity_without_a_fraction_is_a_whole_number_as_json_schema_says() -> None:
    assert parse(body(**items(item(quantity=2.0)))).order_details.items[0].quantity == 2  # type: ignore[index]


def placed() -> OrderPlaced:
    req = parse(body(**items(item("Pen", 3, "19.99")), **card()))
    return OrderPlaced(order_id="o-1", user_id=req.user_id, user_email=req.user_email,
                       order_details=req.order_details, total=req.order_details.total, time=NOW)


def test_money_is_serialized_as_strings() -> None:
    wire = json.loads(placed().to_bytes())
    assert wire["total"] == "59.97"
    assert wire["order_details"]["items"][0]["unit_price"] == "19.99"
    assert wire["schema_version"] == 1


def test_order_placed_round_trips_equal() -> None:
    order = placed()
    again = OrderPlaced.model_validate_json(order.to_bytes())
    assert again == order
    assert type(again.total) is Decimal


def test_events_ignore_unknown_fields() -> None:
    order = placed()
    wire = json.loads(order.to_bytes())
    wire["added_in_v2"] = {"anything": True}
    assert OrderPlaced.model_validate_json(json.dumps(wire)) == order


def test_events_ignore_fields_a_newer_writer_added_even_inside_the_order() -> None:
    """Readers must not dead-letter an order because a newer API added a field to it."""
    request = OrderRequest.model_validate({"user_id": 1, "user_email": "a@b.co", "order_details": {
        "items": [{"product": "Lamp", "quantity": 2, "unit_price": "1.50"}]}})
    data = json.loads(place(request, utcnow()).to_bytes())
    data["order_details"]["gift_wrap"] = True
    data["order_details"]["items"][0]["colour"] = "red"
    data["loyalty_points"] = 12
    read = OrderPlaced.model_validate_json(json.dumps(data))
    assert read.order_details.total == Decimal("3.00")


def test_a_shops_own_fields_in_the_order_are_kept_and_the_rest_stays_strict() -> None:
    req = OrderRequest.model_validate({"user_id": 1, "user_email": "a@b.co", "order_details": {"price": 1, "gift": 1}})
    assert req.order_details.extras == {"gift": 1}
    with pytest.raises(ValidationError) as exc:
        OrderRequest.model_validate({"user_id": 1, "user_email": "a@b.co", "order_details": {"price": 1}, "gift": 1})
    assert exc.value.errors()[0]["loc"] == ("gift",)


@pytest.mark.parametrize("address", ["ada@example", "ada@@example.com", "ada@exa mple.com", "ada.example.com"])
def test_the_api_checks_an_address_in_full(address: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body(user_email=address))
    assert [e["loc"] for e in caught.value.errors()] == [("user_email",)]


def test_events_carry_the_checked_address_and_refuse_a_shapeless_one() -> None:
    wire = json.loads(placed().to_bytes())
    assert OrderPlaced.model_validate(wire).user_email == "a@b.co"
    for broken in ("no-at-sign", "two@@ats", "a b@c.co", "", "a,b@c.co", "x:a@c.co", "<a@c.co>", 'a"b@c.co'):
        with pytest.raises(ValidationError):
            OrderPlaced.model_validate({**wire, "user_email": broken})
