"""The confirmation email of an order: pure, no I/O.

Built with the standard library's ``compat32`` classes (``MIMEText``): the modern ``EmailMessage``
parses every header it is given through its header registry, several times slower here for a message
whose headers we write ourselves (bench/README.md, "What moved the figures").
"""

from __future__ import annotations

from email.charset import QP, Charset
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr

from orderflow.events import OrderVerdict
from orderflow.fields import one_line, shown

UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP  # readable in the raw message, unlike base64, and 7-bit safe


def message_id(order_id: str, domain: str) -> str:
    """Stable per order, so a resend after a crash is recognisable as the same message."""
    return f"<order-{order_id}@{domain}>"


def body(verdict: OrderVerdict) -> str:
    order = verdict.order
    details = order.order_details
    lines = [f"Hello {order.user_id},", "", f"Thank you for your order {order.order_id}. It is confirmed.", ""]
    if details.items:
        for item in details.items:
            lines.append(f"  {item.quantity} x {item.product} at {item.unit_price} {details.currency}"
                         f" = {item.subtotal:.2f} {details.currency}")
        lines.append("")
    if details.extras:
        # The shop's own fields, as sent; a value's line breaks stay inside its indented block.
        for key, value in details.extras.items():
            text = "\n      ".join(shown(value).splitlines() or [""])
            lines.append(f"  {one_line(key)}: {text}")
        lines.append("")
    lines += [f"Total: {order.total:.2f} {details.currency}",
              f"Placed: {order.time:%Y-%m-%d %H:%M:%S} UTC", "", "The Shop"]
    return "\n".join(lines) + "\n"


def render(verdict: OrderVerdict, *, sender: str, domain: str) -> Message:
    order = verdict.order
    msg = MIMEText(body(verdict), "plain", UTF8_QP)  # type: ignore[arg-type]  # takes a Charset; typeshed says str
    msg["Subject"] = f"Order {order.order_id} confirmed"  # an order id is ASCII by contract
    msg["From"] = formataddr(parseaddr(sender), charset="utf-8")  # a non-ASCII shop name is RFC 2047-encoded
    msg["To"] = order.user_email
    msg["Date"] = format_datetime(verdict.occurred_at)
    msg["Message-ID"] = message_id(order.order_id, domain)
    msg["X-Order-Id"] = order.order_id
    return msg
