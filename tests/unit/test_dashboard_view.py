"""dashboard.view: the pure view model, fed events by hand (no Kafka)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest

from dashboard.view import DashboardEvent, DashboardState
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

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


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


def counts(state: DashboardState) -> tuple[int, int, int, int, int]:
    c = state.counts
    return c["received"], c["confirmed"], c["rejected"], c["emails_sent"], c["emails_failed"]


def test_empty_state_is_zeroes_and_money_strings() -> None:
    data = DashboardState().to_json()
    assert data["counts"] == {"received": 0, "confirmed": 0, "rejected": 0, "emails_sent": 0, "emails_failed": 0}
    assert data["totals"] == {"orders": 0, "rejected": 0, "revenue": "0.00", "average_order_value": "0.00",
                              "per_day": [], "scopes": 0}
    assert data["orders"] == [] and data["max_orders"] == 200


def test_confirmed_and_emailed_order_has_full_timeline() -> None:
    order = placed("o1", price="25.5")
    state = DashboardState()
    state.apply_all([order, verdict(order), email(order)])
    assert counts(state) == (1, 1, 0, 1, 0)
    [row] = state.to_json()["orders"]
    assert row == {
        "order_id": "o1", "user_id": "u1", "total": "25.50", "currency": "USD", "items": [], "more_items": 0,
            "details": [],
        "received_at": "2025-03-01T09:00:00+00:00", "stage": "emailed",
        "verdict": {"status": "confirmed", "reason": None, "at": "2025-03-01T09:00:01+00:00", "took_ms": 1000},
        "email": {"status": "sent", "error": None, "attempts": 1, "at": "2025-03-01T09:00:02+00:00",
                  "took_ms": 1000},
    }


def test_rejection_carries_its_reason_and_stops_there() -> None:
    order = placed("o2")
    state = DashboardState()
    state.apply_all([order, verdict(order, "rejected", "card expired")])
    assert counts(state) == (1, 0, 1, 0, 0)
    [row] = state.to_json()["orders"]
    assert row["stage"] == "rejected"
    assert row["verdict"]["reason"] == "card expired" and row["email"] is None


def test_failed_email_is_counted_apart() -> None:
    order = placed("o3")
    state = DashboardState()
    state.apply_all([order, verdict(order), email(order, "failed", error="451 try later")])
    assert counts(state) == (1, 1, 0, 0, 1)
    [row] = state.to_json()["orders"]
    assert row["stage"] == "email_failed"
    assert row["email"] == {"status": "failed", "error": "451 try later", "attempts": 3,
                            "at": "2025-03-01T09:00:02+00:00", "took_ms": 1000}


@pytest.mark.parametrize("order_of_arrival", list(itertools.permutations(range(3))), ids=str)
def test_arrival_order_across_topics_does_not_matter(order_of_arrival: tuple[int, ...]) -> None:
    order = placed("o4", minute=5, price="7.00")
    events: list[DashboardEvent] = [order, verdict(order), email(order)]
    state = DashboardState()
    state.apply_all(events[i] for i in order_of_arrival)
    assert counts(state) == (1, 1, 0, 1, 0)
    [row] = state.to_json()["orders"]
    assert row["received_at"] == "2025-03-01T09:05:00+00:00"
    assert (row["total"], row["stage"]) == ("7.00", "emailed")


@pytest.mark.parametrize("which", ["placed", "verdict", "email"])
def test_redelivered_event_is_not_counted_twice(which: str) -> None:
    order = placed("o5")
    events: dict[str, DashboardEvent] = {"placed": order, "verdict": verdict(order), "email": email(order)}
    state = DashboardState()
    state.apply_all(events.values())
    first = state.to_json()
    state.apply(events[which].model_copy(update={"occurred_at": T0 + timedelta(hours=1)}))
    assert state.to_json() == first


def test_a_changed_verdict_moves_the_order_between_counters() -> None:
    order = placed("o6")
    state = DashboardState()
    state.apply_all([order, verdict(order, "confirmed"), verdict(order, "rejected", "fraud check")])
    assert counts(state) == (1, 0, 1, 0, 0)
    assert state.to_json()["orders"][0]["verdict"]["reason"] == "fraud check"


@pytest.mark.parametrize("seed", range(5))
def test_only_the_newest_orders_are_kept_whatever_the_arrival_order(seed: int) -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(10)]
    random.Random(seed).shuffle(orders)
    state = DashboardState(max_orders=3)
    state.apply_all(orders)
    assert [o["order_id"] for o in state.to_json()["orders"]] == ["o9", "o8", "o7"]
    assert len(state) == 3
    assert state.counts["received"] == 10  # counts are cumulative, eviction only drops the detail


def test_a_late_event_for_an_old_order_does_not_push_out_newer_ones() -> None:
    state = DashboardState(max_orders=2)
    old, a, b = placed("old", minute=0), placed("a", minute=10), placed("b", minute=20)
    state.apply_all([a, b])
    state.apply(verdict(old))  # its order time is older than everything held
    assert [o.order_id for o in state.orders()] == ["b", "a"]
    assert counts(state) == (2, 1, 0, 0, 0)  # received counts orders placed; the verdict counts as one
    version = state.version
    state.apply(old)  # its order, read late: counted, and the change is sent, but it is still not held
    assert counts(state) == (3, 1, 0, 0, 0) and state.version > version
    assert [o.order_id for o in state.orders()] == ["b", "a"]


def test_verdicts_of_evicted_orders_do_not_count_them_received_again() -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(5)]
    state = DashboardState(max_orders=2)
    state.apply_all(orders)
    state.apply_all(verdict(o) for o in orders)
    state.apply_all([*orders, *(verdict(o) for o in orders)])  # all of it redelivered
    assert counts(state) == (5, 5, 0, 0, 0)
    assert [(o.order_id, o.user_id, o.stage) for o in state.orders()] == [("o4", "u1", "confirmed"),
                                                                         ("o3", "u1", "confirmed")]


def test_late_emails_of_evicted_orders_do_not_push_out_newer_orders() -> None:
    orders = [placed(f"o{i}", minute=i, user_id=f"u{i}") for i in range(6)]
    state = DashboardState(max_orders=3)
    state.apply_all(orders)
    state.apply_all(verdict(o) for o in orders)
    state.apply_all(email(o, after=600) for o in orders)  # sent ten minutes later: after every order's time
    assert counts(state) == (6, 6, 0, 6, 0)
    rows = state.to_json()["orders"]
    assert [(r["order_id"], r["user_id"], r["stage"]) for r in rows] == [
        ("o5", "u5", "emailed"), ("o4", "u4", "emailed"), ("o3", "u3", "emailed")]


def test_an_evicted_order_keeps_its_counts_when_its_verdict_changes() -> None:
    orders = [placed(f"o{i}", minute=i) for i in range(3)]
    state = DashboardState(max_orders=2)
    state.apply_all([*orders, verdict(orders[0])])
    state.apply(verdict(orders[0], "rejected", "fraud check"))
    assert counts(state) == (3, 0, 1, 0, 0)
    assert state.order("o0") is None


def test_an_email_read_before_its_order_waits_for_it() -> None:
    state = DashboardState(max_orders=2)
    newer = [placed("a", minute=10), placed("b", minute=20)]
    late = placed("late", minute=30)
    state.apply_all([email(late, after=5), *newer])
    assert [o.order_id for o in state.orders()] == ["b", "a"]  # the email alone holds no row
    state.apply(late)
    assert [o.order_id for o in state.orders()] == ["late", "b"]
    assert state.order("late").stage == "emailed"  # type: ignore[union-attr]
    assert counts(state) == (3, 0, 0, 1, 0)


def test_an_order_first_seen_by_its_email_is_ranked_by_its_receipt_time() -> None:
    state = DashboardState(max_orders=2)
    early = placed("early", minute=0)
    state.apply(email(early, after=3600))  # seen first through an event an hour later
    state.apply(placed("a", minute=10))
    state.apply(early)  # now known as the oldest
    state.apply(placed("b", minute=20))
    assert [o.order_id for o in state.orders()] == ["b", "a"]


def test_heap_stays_bounded_under_churn() -> None:
    state = DashboardState(max_orders=5)
    for i in range(2000):
        order = placed(f"o{i}", minute=i)
        state.apply_all([email(order, after=999_999), order])
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
    state.apply_all([order, verdict(order, "rejected", "<img src=x onerror=alert(1)>"),
                     snapshot(0, 1, "10", {order.time.date(): (1, "10")})])
    data = state.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["totals"]["revenue"] == "10.00"
    assert data["orders"][0]["verdict"]["reason"] == "<img src=x onerror=alert(1)>"  # escaping is the page's job


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        DashboardState(max_orders=0)
    with pytest.raises(TypeError):
        DashboardState().apply(Totals())  # type: ignore[arg-type]
