"""A synthetic order history: valid ``OrderPlaced``, ``EmailOutcome`` and ``EmailSent`` records, fast.

Each kind of record is made once by the real pydantic models with placeholder values, then split at the
placeholders; a record of the history is that template with its own values joined in (about a microsecond
per record instead of a model dump). Every record still parses as its model: the values put in have the
shapes the placeholders had.

The history spans ``SPAN`` up to the moment it is made, oldest first, about ``ORDERS_PER_CUSTOMER`` orders
per customer (so the store's per-user and per-address indexes hold realistic groups). Every
``REJECT_EVERY``-th order carries a card that fails the checksum, so transactions_backend rejects it and it
gets no email; every other order gets one outcome (``sent``) and one ``email_sent_log`` note, as
email_backend would have written them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from bench.common import BAD_CARD, ORDER_BODY, REJECT_EVERY
from orderflow.events import EmailOutcome, EmailSent, OrderRequest
from orders_backend.orders import place

SPAN = timedelta(days=30)
ORDERS_PER_CUSTOMER = 10
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # what pydantic writes for a UTC time with microseconds
EMAILED_AFTER = timedelta(seconds=3)

# Placeholders: values each model accepts, unlikely to occur anywhere else in a record.
ORDER_ID = "ORDERIDSLOT"
USER_ID = "USERIDSLOT"
EMAIL = "emailslot@example.com"
EVENT_ID = "5107aaaa-aaaa-4aaa-8aaa-aaaaaaaa5107"
TIME = datetime(2001, 2, 3, 4, 5, 6, 70809, tzinfo=UTC)
SLOTS = (ORDER_ID, USER_ID, EMAIL, EVENT_ID, TIME.strftime(TIME_FORMAT))


class Template:
    """A record's bytes split at the placeholders; ``fill`` joins in one value per placeholder kind."""

    def __init__(self, raw: bytes, slots: Sequence[str]) -> None:
        pattern = b"(" + b"|".join(re.escape(s.encode()) for s in slots) + b")"
        parts = re.split(pattern, raw)
        index = {s.encode(): i for i, s in enumerate(slots)}
        self.literals = parts[0::2]
        self.which = [index[p] for p in parts[1::2]]

    def fill(self, values: Sequence[bytes]) -> bytes:
        out = [self.literals[0]]
        for slot, literal in zip(self.which, self.literals[1:], strict=True):
            out.append(values[slot])
            out.append(literal)
        return b"".join(out)


def _placed(card: str) -> bytes:
    body = {**ORDER_BODY, "order_id": ORDER_ID, "user_id": USER_ID, "user_email": EMAIL,
            "payment": {**ORDER_BODY["payment"], "card_number": card}}
    order = place(OrderRequest.model_validate(body), TIME)
    return order.model_copy(update={"event_id": UUID(EVENT_ID), "occurred_at": TIME}).to_bytes()


def _outcome() -> bytes:
    order = OrderRequest.model_validate({**ORDER_BODY, "order_id": ORDER_ID})
    return EmailOutcome(order_id=ORDER_ID, status="sent", recipient=EMAIL, message_id=f"<{ORDER_ID}@shop.example>",
                        attempts=1, order_details=order.order_details.model_dump(), event_id=UUID(EVENT_ID),
                        occurred_at=TIME).to_bytes()


def _note() -> bytes:
    return EmailSent(order_id=ORDER_ID, message_id=f"<{ORDER_ID}@shop.example>", attempts=1,
                     event_id=UUID(EVENT_ID), occurred_at=TIME).to_bytes()


@dataclass
class History:
    """``n`` orders ending at ``end``; ``orders()``, ``outcomes()``, ``notes()`` yield (key, value) records."""

    n: int
    end: datetime

    def __post_init__(self) -> None:
        self.placed = Template(_placed(ORDER_BODY["payment"]["card_number"]), SLOTS)
        self.placed_bad = Template(_placed(BAD_CARD), SLOTS)
        self.outcome = Template(_outcome(), SLOTS)
        self.note = Template(_note(), SLOTS)
        self.customers = max(1, self.n // ORDERS_PER_CUSTOMER)
        self.start = self.end - SPAN
        self.step = SPAN / max(1, self.n)

    @staticmethod
    def order_id(i: int) -> str:
        return f"hist-{i:09d}"

    @staticmethod
    def rejected(i: int) -> bool:
        return i % REJECT_EVERY == 0

    @property
    def confirmed(self) -> int:
        return self.n - len(range(0, self.n, REJECT_EVERY))

    def _values(self, i: int, kind: int, delay: timedelta = timedelta()) -> tuple[bytes, list[bytes]]:
        key = self.order_id(i).encode()
        customer = i % self.customers
        at = (self.start + i * self.step + delay).strftime(TIME_FORMAT)
        event_id = f"{kind:08x}-0000-4000-8000-{i:012x}"
        return key, [key, f"u-{customer}".encode(), f"customer-{customer}@example.com".encode(), event_id.encode(),
                     at.encode()]

    def orders(self) -> Iterator[tuple[bytes, bytes]]:
        for i in range(self.n):
            key, values = self._values(i, 1)
            yield key, (self.placed_bad if self.rejected(i) else self.placed).fill(values)

    def outcomes(self) -> Iterator[tuple[bytes, bytes]]:
        for i in range(self.n):
            if not self.rejected(i):
                key, values = self._values(i, 2, EMAILED_AFTER)
                yield key, self.outcome.fill(values)

    def notes(self) -> Iterator[tuple[bytes, bytes]]:
        for i in range(self.n):
            if not self.rejected(i):
                key, values = self._values(i, 3, EMAILED_AFTER)
                yield key, self.note.fill(values)
