"""What POST /order takes, read as the API reads it (bytes -> OrderRequest.from_json): the seed's
free-form details, exact money, bounded extras, and the hostile bodies a fuzzer sends."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from email_backend.render import render
from orderflow.events import OrderPlaced, OrderRequest, OrderVerdict, utcnow
from orderflow.fields import DETAIL_DEPTH, DETAIL_ITEMS, DETAIL_KEYS, DETAIL_STRING
from orderflow.jsonbody import MalformedJson, loads
from orderflow.order_request import MAX_DETAIL_FIELDS
from orders_backend.orders import place

SEED_SHAPED = {"user_id": "u-1", "order_id": "o-1", "user_email": "a@example.com",
               "order_details": {"product": "chair", "quantity": 1, "price": 19.99}}


def parse_bytes(raw: bytes) -> OrderRequest:
    return OrderRequest.from_json(raw)


def with_details(details: dict[str, Any]) -> bytes:
    return json.dumps({**SEED_SHAPED, "order_details": details}).encode()


def error_of(raw: bytes) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        parse_bytes(raw)
    [error] = caught.value.errors()
    return dict(error)


def test_the_seed_shaped_order_is_accepted_with_its_own_fields() -> None:
    req = parse_bytes(json.dumps(SEED_SHAPED).encode())
    assert req.order_details.total == Decimal("19.99")
    assert req.order_details.extras == {"product": "chair", "quantity": 1}


def test_the_shops_fields_travel_unchanged_through_the_events() -> None:
    extras = {"product": "chair", "quantity": 2, "size": "L", "notes": "leave at\nthe door",
              "dims": {"w": 1.5, "h": [1, 2, None, True]}}
    order = place(parse_bytes(with_details({**extras, "price": "39.98"})), utcnow())
    verdict = OrderVerdict(order_id=order.order_id, status="confirmed", order=order)
    again = OrderVerdict.model_validate_json(verdict.to_bytes())
    assert again.order.order_details.extras == extras
    assert json.loads(again.to_bytes())["order"]["order_details"]["dims"] == {"w": 1.5, "h": [1, 2, None, True]}


@pytest.mark.parametrize(("written", "held"), [
    (b"19.99", "19.99"), (b'"19.99"', "19.99"), (b"1e3", "1000.00"), (b"10", "10.00"), (b"19.990", "19.99"),
    (b'"0.5"', "0.50"), (b"1000000", "1000000.00"),
])
def test_prices_are_read_exactly_and_held_to_the_cent(written: bytes, held: str) -> None:
    raw = b'{"user_id": 1, "user_email": "a@b.co", "order_details": {"price": ' + written + b"}}"
    details = parse_bytes(raw).order_details
    assert str(details.price) == held and str(details.total) == held


@pytest.mark.parametrize("written", [
    b"19.990000000000000001",  # a binary float would call this 19.99
    b"19.999999999999999999",  # ... and this 20.0
    b'"\xd9\xa1\xd9\xa0"',  # Arabic-Indic digits: Decimal() would read 10
    b'"\xef\xbc\x91\xef\xbc\x90"',  # full-width digits
    b'"1e3"', b'"1_000"', b'"+10"', b'"10.00000"', b'" 10"', b'"10\\n"', b"0", b"-1", b"1000000.01",
])
def test_prices_that_are_not_plain_exact_amounts_are_refused(written: bytes) -> None:
    raw = b'{"user_id": 1, "user_email": "a@b.co", "order_details": {"price": ' + written + b"}}"
    assert error_of(raw)["loc"] == ("order_details", "price")


def test_card_digits_are_ascii() -> None:
    raw = json.dumps({**SEED_SHAPED, "payment": {"card_number": "٤١١١١١١١١١١١١١١١", "expiry": "12/35"}})
    assert error_of(raw.encode())["loc"] == ("payment", "card_number")


@pytest.mark.parametrize(("details", "kind", "named"), [
    ({"notes": "x" * (DETAIL_STRING + 1)}, "order_details_string_too_long", "order_details.notes"),
    ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "order_details_too_deep", f"nest at most {DETAIL_DEPTH} levels"),
    ({f"k{i}": i for i in range(MAX_DETAIL_FIELDS)}, "order_details_too_many_keys", f"{DETAIL_KEYS} keys"),
    ({"tags": list(range(DETAIL_ITEMS + 1))}, "order_details_too_many_items", f"{DETAIL_ITEMS} items"),
    ({"opts": {f"k{i}": i for i in range(DETAIL_KEYS + 1)}}, "order_details_too_many_keys", f"{DETAIL_KEYS} keys"),
    ({"notes": "a\x00b"}, "order_details_control_character", "order_details.notes"),
    ({"dims": {"w\n": "a\x1bb"}}, "order_details_control_character", "order_details.dims.w\ufffd"),
])
def test_extras_beyond_a_bound_get_an_error_naming_it(details: dict[str, Any], kind: str, named: str) -> None:
    error = error_of(with_details({**details, "price": 5}))
    assert error["type"] == kind and error["loc"] == ("order_details",)
    assert named in error["msg"]


def test_extras_at_every_bound_are_accepted() -> None:
    details = {"notes": "x" * DETAIL_STRING, "a": {"b": {"c": {"d": 1}}}, "tags": list(range(DETAIL_ITEMS)),
               "multi": "line one\r\nline two\tend", "price": 5,
               **{f"k{i}": i for i in range(DETAIL_KEYS - 4)}}
    assert parse_bytes(with_details(details)).order_details.extras["a"] == {"b": {"c": {"d": 1}}}


@pytest.mark.parametrize("name", ["chair\x00", "chair\r\nBcc: x@y.z", "a\nb", "\x7f"])
def test_product_names_are_one_line_of_text(name: str) -> None:
    raw = json.dumps({**SEED_SHAPED, "order_details": {"items": [
        {"product": name, "quantity": 1, "unit_price": "1.00"}]}}).encode()
    assert error_of(raw)["loc"] == ("order_details", "items", 0, "product")


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"user_id": 1, "user_id": 2}', "given more than once"),
    (b'{"price": NaN}', "NaN is not JSON"),
    (b'{"price": Infinity}', "Infinity is not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
    (b"[" * 100_000, "nests too deeply"),
    (b'{"a": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"a": 1,}', "line 1 column 9"),
])
def test_bodies_that_are_not_plain_json_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedJson, match=reason):
        loads(raw)


def test_a_byte_order_mark_is_ignored() -> None:
    raw = json.dumps(SEED_SHAPED).encode()
    assert loads(b"\xef\xbb\xbf" + raw) == loads(raw)


def test_the_email_shows_the_shops_fields_in_its_body_never_in_a_header() -> None:
    details = {"product": "chair", "notes": "ring twice\nthen wait", "price": "19.99"}
    order = place(parse_bytes(with_details(details)), utcnow())
    msg = render(OrderVerdict(order_id=order.order_id, status="confirmed", order=order), sender="s@x.co",
                 domain="x.co")
    body = msg.get_payload(decode=True).decode()
    assert "  product: chair\n" in body and "  notes: ring twice\n      then wait\n" in body
    headers = "".join(f"{k}: {v}\n" for k, v in msg.items())
    assert "chair" not in headers and "ring" not in headers


def test_events_read_old_orders_without_extras() -> None:
    old = {"order_id": "o-9", "user_id": "u", "user_email": "a@b.co", "total": "5.00",
           "order_details": {"price": "5.00", "currency": "USD"}, "time": "2025-01-01T00:00:00Z"}
    assert OrderPlaced.model_validate(old).order_details.extras == {}


def test_a_key_with_control_characters_is_kept_but_shown_on_one_line_in_the_email() -> None:
    order = place(parse_bytes(with_details({"gift\r\nBcc: x@y.z": "yes", "price": 5})), utcnow())
    assert order.order_details.extras == {"gift\r\nBcc: x@y.z": "yes"}  # carried unchanged
    msg = render(OrderVerdict(order_id=order.order_id, status="confirmed", order=order), sender="s@x.co",
                 domain="x.co")
    body = msg.get_payload(decode=True).decode()
    assert "  gift\ufffd\ufffdBcc: x@y.z: yes\n" in body and msg["Bcc"] is None
