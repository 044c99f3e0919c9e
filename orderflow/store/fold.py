"""The projection, pure: ``fold(row, event) -> row`` over the three order topics' events.

The rules make the final row depend only on each topic's own order of records, never on how the
projector interleaves the topics (one ``order_id`` is one key, so one partition, so one order per topic):

* the first ``OrderPlaced`` of an id in ``order_details`` is the order; later ones are repeats and change
  nothing. It fills the order's fields, over any taken from a verdict read before it;
* the first verdict in ``order_confirmed`` decides; it carries the whole order, so it fills the order's
  fields while the placement is unread (a verdict can come first: the projector reads the topics side by side);
* the first outcome in ``order_email_sent`` is the email's; its recipient stands in for ``user_email``
  until the order is read;
* a redelivered or repeated event of a kind already folded changes nothing.

The counters follow from the rows: ``counter_deltas(before, after)`` is what one row's change adds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.store.rows import OrderRow
from orderflow.store.schema import COUNTERS

StoreEvent = OrderPlaced | OrderVerdict | EmailOutcome


def cents(total: Decimal) -> int:
    """``total`` in whole cents; ``ValueError`` for an amount the store cannot hold exactly."""
    scaled = total.scaleb(2)
    if not total.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"total {total} is not a whole number of cents")
    return int(scaled)


@dataclass(frozen=True)
class LoggedEvent:
    """An event and where it is: its record's value as written, its partition and offset.

    ``of`` refuses (``ValueError``) an event the store cannot hold exactly, so that it goes to the
    dead letters instead of the store.
    """

    event: StoreEvent
    raw: str
    partition: int
    offset: int

    @classmethod
    def of(cls, event: StoreEvent, raw: bytes, partition: int, offset: int) -> LoggedEvent:
        order = event if isinstance(event, OrderPlaced) else event.order if isinstance(event, OrderVerdict) else None
        if order is not None:
            cents(order.total)
        return cls(event, raw.decode(), partition, offset)

    @property
    def order_id(self) -> str:
        return self.event.order_id


def _with_order(row: OrderRow, order: OrderPlaced) -> OrderRow:
    return dataclasses.replace(row, user_id=order.user_id, user_email=order.user_email, total_cents=cents(order.total),
                               currency=order.order_details.currency, placed_at=order.time,
                               placed_event_id=str(order.event_id))


def fold(row: OrderRow | None, logged: LoggedEvent) -> OrderRow:
    """``row`` (``None``: no event of this id read yet) with ``logged`` folded in; the same row when
    the event changes nothing."""
    current = row if row is not None else OrderRow(order_id=logged.order_id)
    if current.order_id != logged.order_id:
        raise ValueError(f"event of order {logged.order_id} folded into order {current.order_id}")
    event = logged.event
    if isinstance(event, OrderPlaced):
        if current.placed_json is not None:
            return current  # a repeat: the first placement is the order
        return dataclasses.replace(_with_order(current, event), placed_partition=logged.partition,
                                   placed_offset=logged.offset, placed_json=logged.raw)
    if isinstance(event, OrderVerdict):
        if current.verdict_json is not None:
            return current
        described = current if current.placed_json is not None else _with_order(current, event.order)
        return dataclasses.replace(described, status=event.status, reason=event.reason,
                                   decided_at=event.occurred_at, verdict_json=logged.raw)
    if current.email_json is not None:
        return current
    return dataclasses.replace(current, user_email=current.user_email or event.recipient, email_status=event.status,
                               email_attempts=event.attempts, email_error=event.error, emailed_at=event.occurred_at,
                               email_json=logged.raw)


def counted(row: OrderRow | None) -> dict[str, int]:
    """What one row adds to each counter."""
    if row is None:
        return dict.fromkeys(COUNTERS, 0)
    return {
        "received": int(row.placed),
        "confirmed": int(row.status == "confirmed"),
        "rejected": int(row.status == "rejected"),
        "emails_sent": int(row.email_status == "sent"),
        "emails_failed": int(row.email_status == "failed"),
    }


def counter_deltas(before: OrderRow | None, after: OrderRow) -> dict[str, int]:
    """How the counters move when a row goes from ``before`` to ``after``."""
    old, new = counted(before), counted(after)
    return {name: new[name] - old[name] for name in COUNTERS}
