"""The order store's projection, pure: fold(row, event) -> row and the counters, without a database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.store import COUNTERS, LoggedEvent, OrderRow, counted, counter_deltas, fold
from orderflow.store.fold import cents

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def placed(order_id: str = "o-1", price: str = "19.99", user_id: str = "u-1", email: str = "ada@example.com",
           **details: object) -> OrderPlaced:
    return OrderPlaced(order_id=order_id, user_id=user_id, user_email=email,
                       order_details={"price": price, "currency": "EUR", **details}, total=Decimal(price), time=T0)


def verdict(order: OrderPlaced, status: str = "confirmed", reason: str | None = None) -> OrderVerdict:
    return OrderVerdict(order_id=order.order_id, status=status, reason=reason, order=order,
                        occurred_at=T0 + timedelta(seconds=1))


def email(order_id: str = "o-1", status: str = "sent", recipient: str = "ada@example.com") -> EmailOutcome:
    return EmailOutcome(order_id=order_id, status=status, recipient=recipient, message_id="<m@x>", attempts=2,
                        error=None if status == "sent" else "550 no", occurred_at=T0 + timedelta(seconds=2))


def logged(event: OrderPlaced | OrderVerdict | EmailOutcome, offset: int = 0, partition: int = 1) -> LoggedEvent:
    return LoggedEvent.of(event, event.to_bytes(), partition, offset)


def fold_all(events: Sequence[LoggedEvent], row: OrderRow | None = None) -> OrderRow:
    for event in events:
        row = fold(row, event)
    assert row is not None
    return row


def test_a_placement_makes_the_row_with_the_order_as_written() -> None:
    order = placed(product="chair")
    row = fold(None, logged(order, offset=7, partition=2))
    assert (row.order_id, row.status, row.user_id, row.user_email) == ("o-1", "received", "u-1", "ada@example.com")
    assert (row.total_cents, row.total, row.currency, row.placed_at) == (1999, Decimal("19.99"), "EUR", T0)
    assert row.placed_json == order.to_bytes().decode() and row.placement() == order
    assert (row.placed_event_id, row.placed_partition, row.placed_offset) == (str(order.event_id), 2, 7)
    assert row.verdict_json is None and row.email_json is None and row.email_status is None
    assert counted(row) == {"received": 1, "confirmed": 0, "rejected": 0, "emails_sent": 0, "emails_failed": 0}


def test_a_later_placement_under_the_same_id_changes_nothing() -> None:
    first = fold(None, logged(placed(price="10.00"), offset=3))
    for repeat in (placed(price="10.00"), placed(price="99.00", user_id="someone-else")):
        assert fold(first, logged(repeat, offset=9)) == first


def test_a_verdict_before_its_placement_describes_the_order_until_the_placement_is_read() -> None:
    order = placed()
    early = fold(None, logged(verdict(order, "rejected", "card expired")))
    assert (early.status, early.reason, early.decided_at) == ("rejected", "card expired", T0 + timedelta(seconds=1))
    assert (early.user_id, early.total_cents, early.placed_at) == ("u-1", 1999, T0)
    assert early.placed_json is None and early.placed_offset is None and not early.placed
    assert early.order() == order and early.placement() is None
    assert counted(early)["received"] == 0 and counted(early)["rejected"] == 1
    later = fold(early, logged(order, offset=5))
    assert later.placed_json == order.to_bytes().decode() and later.placed_offset == 5
    assert counter_deltas(early, later) == {**dict.fromkeys(COUNTERS, 0), "received": 1}


def test_an_email_read_first_keeps_its_recipient_until_the_order_is_read() -> None:
    row = fold(None, logged(email(recipient="first@example.com", status="failed")))
    assert (row.status, row.user_email, row.email_status, row.email_attempts, row.email_error) == \
        ("received", "first@example.com", "failed", 2, "550 no")
    assert row.order() is None and row.placed_at is None and row.cursor is None
    assert counted(row) == {**dict.fromkeys(COUNTERS, 0), "emails_failed": 1}
    row = fold(row, logged(verdict(placed(email="ada@example.com"))))
    assert row.user_email == "ada@example.com" and row.email_status == "failed"


def test_the_first_verdict_and_the_first_email_stand() -> None:
    order = placed()
    row = fold_all([logged(order), logged(verdict(order, "confirmed")), logged(email(status="sent"))])
    for again in (verdict(order, "confirmed"), verdict(order, "rejected", "late"), email(status="failed")):
        assert fold(row, logged(again, offset=99)) == row
    assert row.verdict() is not None and row.email() is not None


def merges(*streams: Sequence[LoggedEvent]) -> Iterator[list[LoggedEvent]]:
    """Every interleaving of the streams that keeps each stream's own order."""
    slots = [i for i, stream in enumerate(streams) for _ in stream]
    for order in set(itertools.permutations(slots)):
        taken = [iter(stream) for stream in streams]
        yield [next(taken[i]) for i in order]


def test_the_row_depends_on_each_topic_s_order_only_never_on_the_interleaving() -> None:
    first, racing = placed(price="10.00"), placed(price="12.00", user_id="u-2", email="bob@example.com")
    placements = [logged(first, 0), logged(racing, 1)]  # a second POST under the id, after the first
    verdicts = [logged(verdict(first, "confirmed"), 0), logged(verdict(first, "confirmed"), 1)]  # redelivered
    emails = [logged(email(recipient="ada.lovelace@example.com"), 0)]  # the order's address wins over it
    finals = set()
    for events in merges(placements, verdicts, emails):
        rows: list[OrderRow | None] = [None]
        for event in events:
            rows.append(fold(rows[-1], event))
        final = rows[-1]
        assert final is not None
        finals.add(final)
        # The counters moved by each step add up to what the final row counts.
        moved = dict.fromkeys(COUNTERS, 0)
        for before, after in itertools.pairwise(rows):
            assert after is not None
            for name, delta in counter_deltas(before, after).items():
                moved[name] += delta
        assert moved == counted(final)
    assert len(finals) == 1
    (final,) = finals
    assert (final.user_id, final.user_email, final.total_cents, final.placed_offset, final.status,
            final.email_status) == ("u-1", "ada@example.com", 1000, 0, "confirmed", "sent")
    assert counted(final) == {"received": 1, "confirmed": 1, "rejected": 0, "emails_sent": 1, "emails_failed": 0}


@pytest.mark.parametrize(("total", "expected"), [("19.99", 1999), ("1000000", 100000000), ("0.01", 1), ("5.5", 550)])
def test_totals_are_whole_cents(total: str, expected: int) -> None:
    assert cents(Decimal(total)) == expected


def test_an_event_whose_total_is_not_whole_cents_is_refused() -> None:
    order = placed().model_copy(update={"total": Decimal("19.999")})
    with pytest.raises(ValueError, match="whole number of cents"):
        LoggedEvent.of(order, order.to_bytes(), 0, 0)
    with pytest.raises(ValueError, match="whole number of cents"):
        LoggedEvent.of(verdict(order), verdict(order).to_bytes(), 0, 0)


def test_an_event_is_never_folded_into_another_order_s_row() -> None:
    with pytest.raises(ValueError, match="o-2"):
        fold(fold(None, logged(placed("o-1"))), logged(placed("o-2")))
