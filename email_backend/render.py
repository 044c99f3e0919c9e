"""The confirmation email of an order: pure, no I/O."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

from orderflow.events import OrderVerdict


def message_id(order_id: str, domain: str) -> str:
    """Stable per order, so a resend after a crash is recognisable as the same message."""
    return f"<order-{order_id}@{domain}>"


def render(verdict: OrderVerdict, *, sender: str, domain: str) -> EmailMessage:
    order = verdict.order
    details = order.order_details
    lines = [f"Hello {order.user_id},", "", f"Thank you for your order {order.order_id}. It is confirmed.", ""]
    if details.items:
        for item in details.items:
            lines.append(f"  {item.quantity} x {item.product} at {item.unit_price} {details.currency}"
                         f" = {item.subtotal:.2f} {details.currency}")
        lines.append("")
    lines += [f"Total: {order.total:.2f} {details.currency}",
              f"Placed: {order.time:%Y-%m-%d %H:%M:%S} UTC", "", "The Shop"]
    msg = EmailMessage()
    msg["Subject"] = f"Order {order.order_id} confirmed"
    msg["From"] = sender
    msg["To"] = order.user_email
    msg["Date"] = format_datetime(verdict.occurred_at)
    msg["Message-ID"] = message_id(order.order_id, domain)
    msg["X-Order-Id"] = order.order_id
    msg.set_content("\n".join(lines))
    return msg
