"""render(): the confirmation email of one order, with a stable Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from email_backend.render import message_id, render
from orderflow.events import LineItem, OrderDetails, OrderPlaced, OrderVerdict

PLACED_AT = datetime(2025, 3, 15, 9, 5, 7, tzinfo=UTC)


def confirmed(*, order_id: str = "o-42", details: OrderDetails | None = None,
              at: datetime = PLACED_AT) -> OrderVerdict:
    details = details or OrderDetails(items=[
        LineItem(product="Pen", quantity=3, unit_price=Decimal("19.99")),
        LineItem(product="Pad", quantity=1, unit_price=Decimal("2.50")),
    ], currency="EUR")
    placed = OrderPlaced(order_id=order_id, user_id="u7", user_email="buyer@example.com",
                         order_details=details, total=details.total, time=at)
    return OrderVerdict(order_id=order_id, status="confirmed", order=placed)


def send(verdict: OrderVerdict, sender: str = "shop@shop.test") -> EmailMessage:
    """The message as an SMTP server receives it, read back with the modern parser."""
    raw = render(verdict, sender=sender, domain="shop.test").as_bytes()
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def test_headers() -> None:
    verdict = confirmed()
    msg = send(verdict)
    assert msg["Subject"] == "Order o-42 confirmed"
    assert msg["From"] == "shop@shop.test"
    assert msg["To"] == "buyer@example.com"
    assert msg["Message-ID"] == "<order-o-42@shop.test>"
    assert msg["X-Order-Id"] == "o-42"
    assert parsedate_to_datetime(msg["Date"]) == verdict.occurred_at.replace(microsecond=0)


def test_message_id_is_stable_per_order() -> None:
    assert message_id("o-42", "shop.test") == "<order-o-42@shop.test>"
    assert send(confirmed())["Message-ID"] == send(confirmed())["Message-ID"]
    assert send(confirmed())["Message-ID"] == message_id("o-42", "shop.test")


def test_message_ids_differ_between_orders_and_domains() -> None:
    assert send(confirmed(order_id="a"))["Message-ID"] != send(confirmed(order_id="b"))["Message-ID"]
    assert message_id("a", "one.test") != message_id("a", "two.test")


def test_body_lists_items_and_total() -> None:
    body = send(confirmed()).get_content()
    assert "Hello u7," in body
    assert "Thank you for your order o-42. It is confirmed." in body
    assert "  3 x Pen at 19.99 EUR = 59.97 EUR" in body
    assert "  1 x Pad at 2.50 EUR = 2.50 EUR" in body
    assert "Total: 62.47 EUR" in body
    assert "Placed: 2025-03-15 09:05:07 UTC" in body
    assert body.index("Pen") < body.index("Pad") < body.index("Total")


def test_body_of_a_single_price_order() -> None:
    body = send(confirmed(details=OrderDetails(price=Decimal("100")))).get_content()
    assert "Total: 100.00 USD" in body
    assert " x " not in body


def test_a_message_is_plain_text_utf8() -> None:
    details = OrderDetails(items=[LineItem(product="Crème brûlée", quantity=2, unit_price=Decimal("4.25"))])
    msg = send(confirmed(details=details))
    assert msg.get_content_type() == "text/plain"
    assert "2 x Crème brûlée at 4.25 USD = 8.50 USD" in msg.get_content()
    assert msg.get_content_charset() == "utf-8"


def test_placed_time_is_shown_in_utc_whatever_the_offset() -> None:
    at = PLACED_AT.astimezone(timezone(timedelta(hours=2)))
    assert "Placed: 2025-03-15 09:05:07 UTC" in send(confirmed(at=at)).get_content()


def test_a_shop_name_with_accents_is_encoded_and_reads_back() -> None:
    msg = send(confirmed(), sender="Boutique Crème <orders@shop.test>")
    assert msg["From"].addresses[0].display_name == "Boutique Crème"
    assert msg["From"].addresses[0].addr_spec == "orders@shop.test"


def test_the_raw_message_is_seven_bit_and_readable() -> None:
    details = OrderDetails(items=[LineItem(product="Crème brûlée", quantity=2, unit_price=Decimal("4.25"))])
    raw = render(confirmed(details=details), sender="shop@shop.test", domain="shop.test").as_bytes()
    assert raw.isascii()
    assert b"Total: 8.50 USD" in raw  # quoted-printable: ASCII lines stay as they are
