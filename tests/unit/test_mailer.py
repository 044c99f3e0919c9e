"""The SMTP edge against a real SMTP server (aiosmtpd, in-process): the steps of one delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from email_backend.mailer import Mailer
from email_backend.render import render
from orderflow.events import OrderDetails, OrderPlaced, OrderVerdict
from tests.support import SmtpSink, free_port


def message(order_id: str = "o-1", email: str = "buyer@example.com"):  # type: ignore[no-untyped-def]
    details = OrderDetails(price=Decimal("10"))
    placed = OrderPlaced(order_id=order_id, user_id="u1", user_email=email, order_details=details,
                         total=details.total, time=datetime(2025, 3, 15, tzinfo=UTC))
    return render(OrderVerdict(order_id=order_id, status="confirmed", order=placed),
                  sender="The Shop <shop@example.com>", domain="example.com")


def test_before_data_runs_after_the_envelope_and_before_the_server_has_the_message(smtp_sink: SmtpSink) -> None:
    seen: list[int] = []
    mailer = Mailer("127.0.0.1", smtp_sink.port, attempts=1)
    try:
        delivery = mailer.send(message(), before_data=lambda: seen.append(len(smtp_sink.received())))
    finally:
        mailer.close()
    assert delivery.ok and delivery.attempts == 1
    assert seen == [0]  # called once, while the server had nothing yet
    [got] = smtp_sink.received()
    assert got["X-Order-Id"] == "o-1" and got["To"] == "buyer@example.com"
    [raw] = smtp_sink.raw
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # SMTP's CRLF, no bare LF


def test_a_message_refused_at_data_is_retried_then_reported_failed(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse = True  # 451 to DATA
    calls: list[str] = []
    mailer = Mailer("127.0.0.1", smtp_sink.port, attempts=2, backoff=0.01)
    try:
        delivery = mailer.send(message(), before_data=lambda: calls.append("hook"))
    finally:
        mailer.close()
    assert not delivery.ok and delivery.attempts == 2
    assert "451" in (delivery.error or "")
    assert calls == ["hook", "hook"] and smtp_sink.received() == []


def test_a_non_ascii_address_goes_out_with_smtputf8(smtp_sink: SmtpSink) -> None:
    mailer = Mailer("127.0.0.1", smtp_sink.port, attempts=1)
    try:
        assert mailer.send(message(email="josé@example.com")).ok
    finally:
        mailer.close()
    [raw] = smtp_sink.raw
    assert "\r\nTo: josé@example.com\r\n".encode() in raw  # UTF-8 as is, not an RFC 2047 encoded word


def test_a_non_ascii_address_without_smtputf8_fails_that_message_only() -> None:
    # A server without SMTPUTF8 cannot take the address: a failed delivery, not a server outage
    # that would hold every later order back.
    sink = SmtpSink(free_port(), smtputf8=False)
    sink.start()
    mailer = Mailer("127.0.0.1", sink.port, attempts=3, backoff=0.01)
    calls: list[str] = []
    try:
        delivery = mailer.send(message(email="josé@example.com"), before_data=lambda: calls.append("hook"))
        assert not delivery.ok and delivery.attempts == 1 and "SMTPUTF8" in (delivery.error or "")
        assert mailer.send(message("o-2")).ok  # the same connection goes on
    finally:
        mailer.close()
        sink.stop()
    assert calls == []
    assert [m["X-Order-Id"] for m in sink.received()] == ["o-2"]
