"""dashboard.view: the pure view model, fed the order store's rows by hand (no database, no Kafka).

``Book`` is the order store without a database: the store's own pure fold (``orderflow.store.fold``)
turns events into rows with change numbers and counters, exactly as the projector writes them, so
these tests say what the page shows for what happened to an order.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest

from dashboard.view import COUNTERS, DashboardState, OrderView
from orderflow.events import (
    AnalyticsSnapshot,
    DayTotals,
    EmailOutcome,
    OrderDetails,
    OrderPlaced,
    OrderVerdict,
    Status,
    Totals,
)
from orderflow.store import LoggedEvent, OrderRow, counter_deltas, fold

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
Event = OrderPlaced | OrderVerdict | EmailOutcome


def placed(order_id: str = "o1", *, minute: int = 0, price: str = "10.00", user_id: str = "u1") -> OrderPlaced:
    when = T0 + timedelta(minutes=minute)
    return OrderPlaced(order_id=order_id, user_id=user_id, user_email="ada@example.com",
                       order_details=OrderDetails(price=Decimal(price)), total=Decimal(price), time=when,
                       occurred_at=when)


def verdict(order: OrderPlaced, status: Status = "confirmed", reason: str | None = None,
            after: int = 1) -> OrderVerdict:
    return OrderVerdict(order_id=order.order_id, status=status, reason=reason, order=order,
                        occurred_at=order.time + timedelta(seconds=after))


def email(order: OrderPlaced, status: Literal["sent", "failed"] = "sent", after: int = 2,
          error: str | None = None) -> EmailOutcome:
    return EmailOutcome(order_id=order.order_id, status=status, recipient="ada@example.com",
                        message_id="<m@x>", attempts=3 if status == "failed" else 1, error=error,
                        occurred_at=order.time + timedelta(seconds=after))


def snapshot(partition: int, orders: int, revenue: str, days: dict[date, tuple[int, str]] | None = None,
             rejected: int = 0, offset: int = 1) -> AnalyticsSnapshot:
    per_day = {d: DayTotals(orders=n, revenue=Decimal(r)) for d, (n, r) in (days or {}).items()}
    return AnalyticsSnapshot(scope=f"order_confirmed/{partition}", partition=partition, as_of_offset=offset,
                             totals=Totals(orders_count=orders, rejected_count=rejected, revenue=Decimal(revenue),
                                           per_day=per_day))


class Book:
    """The order store's rows and counters, folded in memory the way the projector writes them."""

    def __init__(self) -> None:
        self.rows: dict[str, OrderRow] = {}
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.seq = 0
        self.offset = 0

    def add(self, *events: Event) -> list[OrderRow]:
        """Fold ``events``; the rows they changed, oldest change first (what ``changed_since`` gives)."""
        changed: dict[str, OrderRow] = {}
        for event in events:
            self.offset += 1
            before = self.rows.get(event.order_id)
            after = fold(before, LoggedEvent.of(event, event.to_bytes(), 0, self.offset))
            if after is before:
                continue
            for name, delta in counter_deltas(before, after).items():
                self.counts[name] += delta
            self.seq += 1
            self.rows[event.order_id] = changed[event.order_id] = dataclasses.replace(after, seq=self.seq)
        return sorted(changed.values(), key=lambda r: r.seq)

    def latest(self, limit: int) -> list[OrderRow]:
        rows = [r for r in self.rows.values() if r.placed_at is not None]
        return sorted(rows, key=lambda r: (r.placed_at, r.order_id), reverse=True)[:limit]


def shown(state: DashboardState, book: Book, *events: Event, at: datetime = T0) -> list[OrderRow]:
    """What the store feed does with one turn's changes: the rows, then the counters."""
    rows = book.add(*events)
    state.apply_rows(rows)
    state.set_counts(book.counts, at)
    return rows


def counts(state: DashboardState) -> tuple[int, int, int, int, int]:
    c = state.counts
    return c["received"], c["confirmed"], c["rejected"], c["emails_sent"], c["emails_failed"]


def held(state: DashboardState) -> list[str]:
    return [o.order_id for o in state.orders()]


def test_empty_state_is_zeroes_and_money_strings() -> None:
    data = DashboardState().to_json()
    assert data["counts"] == {"received": 0, "confirmed": 0, "rejected": 0, "emails_sent": 0, "emails_failed": 0}
    assert data["totals"] == {"orders": 0, "rejected": 0, "revenue": "0.00", "average_order_value": "0.00",
                              "per_day": [], "scopes": 0}
    assert data["orders"] == [] and data["max_orders"] == 200


def test_confirmed_and_emailed_order_has_full_timeline() -> None:
    order = placed("o1", price="25.5")
    state = DashboardState()
    shown(state, Book(), order, verdict(order), email(order))
    assert counts(state) == (1, 1, 0, 1, 0)
    [row] = state.to_json()["orders"]
    assert row == {
        "order_id": "o1", "user_id": "u1", "user_email": "ada@example.com", "total": "25.50", "currency": "USD",
        "items": [], "more_items": 0, "details": [],
        "received_at": "2025-03-01T09:00:00+00:00", "stage": "emailed",
        "verdict": {"status": "confirmed", "reason": None, "at": "2025-03-01T09:00:01+00:00", "took_ms": 1000},
        "email": {"status": "sent", "error": None, "attempts": 1, "at": "2025-03-01T09:00:02+00:00",
                  "took_ms": 1000},
    }


def test_rejection_carries_its_reason_and_stops_there() -> None:
    order = placed("o2")
    state = DashboardState()
    shown(state, Book(), order, verdict(order, "rejected", "card expired"))
    assert counts(state) == (1, 0, 1, 0, 0)
    [row] = state.to_json()["orders"]
    assert row["stage"] == "rejected"
    assert row["verdict"]["reason"] == "card expired" and row["email"] is None


def test_failed_email_is_counted_apart() -> None:
    order = placed("o3")
    state = DashboardState()
    shown(state, Book(), order, verdict(order), email(order, "failed", error="451 try later"))
    assert counts(state) == (1, 1, 0, 0, 1)
    [row] = state.to_json()["orders"]
    assert row["stage"] == "email_failed"
    assert row["email"] == {"status": "failed", "error": "451 try later", "attempts": 3,
                            "at": "2025-03-01T09:00:02+00:00", "took_ms": 1000}


@pytest.mark.parametrize("order_of_arrival", list(itertools.permutations(range(3))), ids=str)
def test_arrival_order_across_topics_does_not_matter(order_of_arrival: tuple[int, ...]) -> None:
    order = placed("o4", minute=5, price="7.00")
    events: list[Event] = [order, verdict(order), email(order)]
    state, book = DashboardState(), Book()
    for i in order_of_arrival:  # one turn of the feed per event: every intermediate row is shown too
        shown(state, book, events[i])
    assert counts(state) == (1, 1, 0, 1, 0)
    [row] = state.to_json()["orders"]
    assert row["received_at"] == "2025-03-01T09:05:00+00:00"
    assert (row["total"], row["stage"]) == ("7.00", "emailed")


@pytest.mark.parametrize("which", ["placed", "verdict", "email"])
def test_redelivered_event_is_not_counted_twice(which: str) -> None:
    order = placed("o5")
    events: dict[str, Event] = {"placed": order, "verdict": verdict(order), "email": email(order)}
    state, book = DashboardState(), Book()
    shown(state, book, *events.values())
    first = state.to_json()
    assert shown(state, book, events[which].model_copy(update={"occurred_at": T0 + timedelta(hours=1)})) == []
    assert state.to_json() == first


def test_the_first_verdict_decides() -> None:
    order = placed("o6")
    state = DashboardState()
    shown(state, Book(), order, verdict(order, "confirmed"), verdict(order, "rejected", "fraud check"))
    assert counts(state) == (1, 1, 0, 0, 0)
    assert state.to_json()["orders"][0]["verdict"] == {"status": "confirmed", "reason": None,
                                                       "at": "2025-03-01T09:00:01+00:00", "took_ms": 1000}


@pytest.mark.parametrize("seed", range(5))
def test_only_the_newest_orders_are_kept_whatever_the_arrival_order(seed: int) -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(10)]
    random.Random(seed).shuffle(orders)
    state, book = DashboardState(max_orders=3), Book()
    for order in orders:
        shown(state, book, order)
    assert [o["order_id"] for o in state.to_json()["orders"]] == ["o9", "o8", "o7"]
    assert len(state) == 3
    assert state.counts["received"] == 10  # the store's counts: every order, however few are held


def test_a_late_event_for_an_old_order_does_not_push_out_newer_ones() -> None:
    state, book = DashboardState(max_orders=2), Book()
    old, a, b = placed("old", minute=0), placed("a", minute=10), placed("b", minute=20)
    shown(state, book, a, b)
    shown(state, book, verdict(old))  # its order time is older than everything held
    assert held(state) == ["b", "a"]
    assert counts(state) == (2, 1, 0, 0, 0)  # received counts orders placed; the verdict counts as one
    version = state.version
    shown(state, book, old)  # its order, read late: counted, and the change is sent, but it is still not held
    assert counts(state) == (3, 1, 0, 0, 0) and state.version > version
    assert held(state) == ["b", "a"]


def test_changes_of_evicted_orders_do_not_bring_them_back() -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(5)]
    state, book = DashboardState(max_orders=2), Book()
    shown(state, book, *orders)
    shown(state, book, *(verdict(o) for o in orders))
    shown(state, book, *orders, *(verdict(o) for o in orders))  # all of it redelivered
    assert counts(state) == (5, 5, 0, 0, 0)
    assert [(o.order_id, o.user_id, o.stage) for o in state.orders()] == [("o4", "u1", "confirmed"),
                                                                         ("o3", "u1", "confirmed")]


def test_late_emails_of_evicted_orders_do_not_push_out_newer_orders() -> None:
    orders = [placed(f"o{i}", minute=i, user_id=f"u{i}") for i in range(6)]
    state, book = DashboardState(max_orders=3), Book()
    shown(state, book, *orders)
    shown(state, book, *(verdict(o) for o in orders))
    shown(state, book, *(email(o, after=600) for o in orders))  # sent ten minutes later: after every order's time
    assert counts(state) == (6, 6, 0, 6, 0)
    rows = state.to_json()["orders"]
    assert [(r["order_id"], r["user_id"], r["stage"]) for r in rows] == [
        ("o5", "u5", "emailed"), ("o4", "u4", "emailed"), ("o3", "u3", "emailed")]


def test_an_email_read_before_its_order_waits_for_it() -> None:
    state, book = DashboardState(max_orders=2), Book()
    newer = [placed("a", minute=10), placed("b", minute=20)]
    late = placed("late", minute=30)
    shown(state, book, email(late, after=5), *newer)
    assert held(state) == ["b", "a"]  # the email alone holds no order
    assert counts(state) == (2, 0, 0, 1, 0)
    shown(state, book, late)
    assert held(state) == ["late", "b"]
    assert state.order("late").stage == "emailed"  # type: ignore[union-attr]
    assert counts(state) == (3, 0, 0, 1, 0)


def test_an_order_first_seen_by_its_email_is_ranked_by_its_order_time() -> None:
    state, book = DashboardState(max_orders=2), Book()
    early = placed("early", minute=0)
    shown(state, book, email(early, after=3600))  # seen first through an event an hour later
    shown(state, book, placed("a", minute=10))
    shown(state, book, early)  # now known as the oldest
    shown(state, book, placed("b", minute=20))
    assert held(state) == ["b", "a"]


def test_an_older_change_of_a_row_does_not_replace_a_newer_one() -> None:
    order = placed("o1")
    state, book = DashboardState(), Book()
    [first] = book.add(order)
    [second] = book.add(verdict(order))
    state.apply_rows([second])
    version = state.version
    state.apply_rows([first, second])  # read again: a reload overlapping what was followed
    assert state.version == version and state.order("o1").stage == "confirmed"  # type: ignore[union-attr]


def test_loading_holds_the_newest_and_sends_only_what_changed() -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(6)]
    state, book = DashboardState(max_orders=3), Book()
    book.add(*orders)
    state.load_orders(book.latest(3))
    assert held(state) == ["o5", "o4", "o3"]
    version = state.version
    state.load_orders(book.latest(3))  # the same rows again: nothing to send
    assert state.version == version and state.to_json(since=version)["orders"] == []
    book.add(verdict(orders[4]), placed("o9", minute=9))
    state.load_orders(book.latest(3))
    diff = state.to_json(since=version)
    assert [o["order_id"] for o in diff["orders"]] == ["o9", "o4"] and diff["order_ids"] == ["o9", "o5", "o4"]
    state.load_orders([])  # a store rebuilt from nothing yet
    assert len(state) == 0 and state.to_json()["order_ids"] == []


def test_a_reload_reads_only_the_rows_it_does_not_hold_already(monkeypatch: pytest.MonkeyPatch) -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(4)]
    state, book = DashboardState(max_orders=3), Book()
    book.add(*orders)
    state.load_orders(book.latest(3))
    read: list[str] = []
    of = OrderView.of
    monkeypatch.setattr(OrderView, "of", lambda row: read.append(row.order_id) or of(row))
    book.add(verdict(orders[2]))
    state.load_orders(book.latest(3))
    assert read == ["o2"] and state.order("o2").stage == "confirmed"  # type: ignore[union-attr]
    rebuilt = Book()  # the same orders in a rebuilt store, read in another order: other change numbers
    rebuilt.add(*reversed(orders))
    state.load_orders(rebuilt.latest(3))
    assert sorted(read) == ["o1", "o2", "o2", "o3"]
    assert state.order("o2").stage == "received"  # type: ignore[union-attr]  # this store has no verdict yet


def test_counts_are_the_stores_and_their_gains_are_charted_once() -> None:
    state = DashboardState(window_seconds=10)
    now = T0 + timedelta(seconds=5)
    state.set_counts({"received": 1000, "confirmed": 900, "rejected": 50}, T0, baseline=True)
    assert counts(state) == (1000, 900, 50, 0, 0)
    state.set_counts({"received": 1003, "confirmed": 901, "rejected": 50, "emails_sent": 7}, T0 + timedelta(seconds=4))
    version = state.version
    state.set_counts({"received": 1003, "confirmed": 901, "rejected": 50, "emails_sent": 7}, now)  # read again
    assert state.version == version
    chart = state.to_json(now=now)["charts"]["orders_per_second"]
    assert (sum(chart["received"]), sum(chart["confirmed"]), sum(chart["rejected"])) == (3, 1, 0)
    assert chart["received"][-2] == 3  # at the second of the reading; the baseline's 1000 are no one second's
    state.set_counts({"received": 10, "confirmed": 5, "rejected": 0}, now)  # a rebuilt store: counts start again
    assert counts(state) == (10, 5, 0, 0, 0)
    assert sum(state.to_json(now=now)["charts"]["orders_per_second"]["received"]) == 3


def test_heap_stays_bounded_under_churn() -> None:
    state, book = DashboardState(max_orders=5), Book()
    for i in range(2000):
        order = placed(f"o{i}", minute=i)
        shown(state, book, email(order, after=999_999), order)
    assert len(state) == 5
    assert len(state._heap) <= 2 * 5 + 64 + 2


def test_analytics_latest_snapshot_per_scope_is_merged() -> None:
    d1, d2 = date(2025, 3, 1), date(2025, 3, 2)
    state = DashboardState()
    state.apply(snapshot(0, 1, "10.00", {d1: (1, "10.00")}, offset=1))
    state.apply(snapshot(0, 2, "30.00", {d1: (2, "30.00")}, rejected=1, offset=3))  # replaces the first
    state.apply(snapshot(1, 1, "5.01", {d2: (1, "5.01")}, offset=1))
    totals = state.to_json()["totals"]
    assert totals == {
        "orders": 3, "rejected": 1, "revenue": "35.01", "average_order_value": "11.67",
        "per_day": [{"day": "2025-03-02", "orders": 1, "revenue": "5.01"},
                    {"day": "2025-03-01", "orders": 2, "revenue": "30.00"}],
        "scopes": 2,
    }


def test_to_json_is_plain_json() -> None:
    order = placed("o7")
    state = DashboardState()
    shown(state, Book(), order, verdict(order, "rejected", "<img src=x onerror=alert(1)>"))
    state.apply(snapshot(0, 1, "10", {order.time.date(): (1, "10")}))
    data = state.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["totals"]["revenue"] == "10.00"
    assert data["orders"][0]["verdict"]["reason"] == "<img src=x onerror=alert(1)>"  # escaping is the page's job


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        DashboardState(max_orders=0)
    with pytest.raises(TypeError):
        DashboardState().apply(Totals())  # type: ignore[arg-type]
