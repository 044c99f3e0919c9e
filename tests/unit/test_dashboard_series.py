"""The live parts of the view model: chart series, diffs by version, durations, items, lag, dead letters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dashboard.order_view import ITEMS_KEPT, OrderView
from dashboard.series import Line, PerSecond
from dashboard.view import DashboardState
from orderflow.analytics import merge
from orderflow.events import LineItem, OrderDetails, OrderPlaced
from tests.unit.test_dashboard_view import T0, Book, email, placed, shown, snapshot, verdict


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_per_second_counts_are_dense_and_windowed() -> None:
    rate = PerSecond(("a", "b"), window=5)
    for second in (0, 0, 2, 2.9):
        rate.add("a", at(second))
    rate.add("b", at(2))
    data = rate.to_json()
    start = int(T0.timestamp()) - 2
    assert data == {"t": list(range(start, start + 5)), "a": [0, 0, 2, 0, 2], "b": [0, 0, 0, 0, 1]}
    rate.add("a", at(10))  # the window slides: everything before second 6 is dropped
    assert len(rate) == 1
    rate.add("a", at(1))  # too old for the window now
    assert rate.to_json()["a"] == [0, 0, 0, 0, 1]


def test_per_second_window_ends_now_when_now_is_later() -> None:
    rate = PerSecond(("a",), window=3)
    rate.add("a", at(0))
    assert rate.to_json(now=at(1))["a"] == [0, 1, 0]
    assert rate.to_json(now=at(100))["a"] == [0, 0, 0]  # quiet since: zeros, not the old counts
    assert PerSecond(("a",), 3).to_json() == {"t": [], "a": []}


def test_line_keeps_one_point_per_second_and_a_bounded_number() -> None:
    line = Line(points=3)
    line.add(at(0), "1.00")
    line.add(at(0.5), "2.00")  # same second: replaces
    line.add(at(-3), "3.00")  # a clock behind: stays at the last second, x keeps increasing
    assert line.to_json() == {"t": [int(T0.timestamp())], "v": ["3.00"]}
    for i in range(1, 10):
        line.add(at(i), f"{i}.00")
    assert len(line) == 3 and line.to_json()["v"] == ["7.00", "8.00", "9.00"]
    with pytest.raises(ValueError):
        Line(points=1)
    with pytest.raises(ValueError):
        PerSecond(("a",), window=0)


def test_revenue_line_ends_at_the_merged_analytics_total() -> None:
    state = DashboardState()
    snaps = [snapshot(0, 1, "10.00", offset=1), snapshot(1, 2, "5.50", offset=2), snapshot(0, 3, "30.25", offset=4)]
    for i, snap in enumerate(snaps):
        state.apply(snap.model_copy(update={"occurred_at": at(i * 10)}))
    data = state.to_json()
    assert data["charts"]["revenue"]["v"] == ["10.00", "15.50", "35.75"]
    merged = merge(state.snapshots.values()).revenue
    assert data["charts"]["revenue"]["v"][-1] == data["totals"]["revenue"] == str(merged)


def test_rate_chart_counts_receipts_and_verdicts_once() -> None:
    order = placed("o1")
    state, book = DashboardState(window_seconds=10), Book()
    state.set_counts(book.counts, T0, baseline=True)
    shown(state, book, order, order, verdict(order), verdict(order), verdict(order, "rejected"), at=order.time)
    chart = state.to_json(now=order.time + timedelta(seconds=1))["charts"]["orders_per_second"]
    assert sum(chart["received"]) == 1 and chart["received"][-2] == 1
    assert sum(chart["confirmed"]) == 1 and sum(chart["rejected"]) == 0  # a second verdict is not a new one


def test_to_json_since_a_version_carries_only_what_changed() -> None:
    a, b = placed("a", minute=1), placed("b", minute=2)
    state, book = DashboardState(), Book()
    shown(state, book, a, b)
    full = state.to_json()
    assert full["since"] == 0 and {o["order_id"] for o in full["orders"]} == {"a", "b"}
    version = full["version"]
    shown(state, book, b)  # a repeat changes nothing
    assert state.version == version and state.to_json(since=version)["orders"] == []
    shown(state, book, verdict(a))
    diff = state.to_json(since=version)
    assert [o["order_id"] for o in diff["orders"]] == ["a"] and diff["orders"][0]["stage"] == "confirmed"
    assert diff["order_ids"] == ["b", "a"] and diff["version"] > version
    assert diff["counts"] == state.to_json()["counts"]  # the small parts are always whole


def test_durations_and_items_of_an_order() -> None:
    items = [LineItem(product=f"p{i}", quantity=1, unit_price=Decimal("1.5")) for i in range(ITEMS_KEPT + 3)]
    details = OrderDetails(items=items)
    order = OrderPlaced(order_id="big", user_id="u", user_email="ada@example.com", order_details=details,
                        total=details.total, time=T0)
    state, book = DashboardState(), Book()
    shown(state, book, order, verdict(order, after=2), email(order, after=5))
    row = state.to_json()["orders"][0]
    assert len(row["items"]) == ITEMS_KEPT and row["more_items"] == 3
    assert row["items"][0] == {"product": "p0", "quantity": 1, "unit_price": "1.50"}
    assert (row["verdict"]["took_ms"], row["email"]["took_ms"]) == (2000, 3000)
    skewed = placed("skew")
    shown(state, book, verdict(skewed, after=-1))  # the deciding host's clock is behind the API's
    assert state.order("skew").to_json()["verdict"]["took_ms"] == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(("details", "summary"), [
    ({"items": [{"product": "Oak chair", "quantity": 2, "unit_price": "1.00"},
                {"product": "Lamp", "quantity": 1, "unit_price": "1.00"}]}, "Oak chair × 2, Lamp"),
    ({"price": "5.00", "product": "stool <b>", "quantity": 3}, "stool <b> × 3"),
    ({"price": "5.00", "product": "stool", "quantity": 1}, "stool"),
    ({"price": "5.00", "size": "L", "colour": "oak"}, "size: L, colour: oak"),
    ({"price": "5.00"}, "single price"),
])
def test_what_was_ordered_in_one_line(details: dict, summary: str) -> None:  # type: ignore[type-arg]
    parsed = OrderDetails.model_validate(details)
    order = OrderPlaced(order_id="s", user_id="u", user_email="ada@example.com", order_details=parsed,
                        total=parsed.total, time=T0)
    [row] = Book().add(order)
    view = OrderView.of(row)
    assert view is not None and view.summary() == summary  # as static/common.js writes it on the live page


def test_today_comes_from_the_analytics_day_of_now() -> None:
    state = DashboardState()
    state.apply(snapshot(0, 3, "30.00", {date(2025, 3, 1): (2, "20.00"), date(2025, 2, 28): (1, "10.00")}))
    assert state.to_json()["today"] is None
    assert state.to_json(now=datetime(2025, 3, 1, 23, tzinfo=UTC))["today"] == {
        "day": "2025-03-01", "orders": 2, "revenue": "20.00"}
    assert state.to_json(now=datetime(2025, 3, 2, tzinfo=UTC))["today"]["revenue"] == "0.00"


def test_lag_keeps_the_last_figures_when_a_round_fails() -> None:
    state = DashboardState()
    state.record_lag("email_backend", "order_confirmed", {1: 3, 0: 2}, T0)
    version = state.version
    state.record_lag("email_backend", "order_confirmed", {0: 2, 1: 3}, at(5))  # same figures: no change to push
    assert state.version == version
    state.record_lag("email_backend", "order_confirmed", None, at(10), "GroupCoordinatorNotAvailableError")
    lag = state.to_json()["lag"]["email_backend"]
    assert lag == {"topic": "order_confirmed", "error": "GroupCoordinatorNotAvailableError", "total": 5,
                   "partitions": {"0": 2, "1": 3}, "at": at(10).isoformat()}
    assert state.version > version


def test_dead_letters_are_counted_with_the_latest_few_kept() -> None:
    state = DashboardState()
    for i in range(8):
        state.record_dead_letter("order_details.dlq", partition=0, offset=i, at=at(i), error=f"bad {i}",
                                 source=f"order_details[1]@{i}")
    state.record_dead_letter("order_confirmed.dlq", partition=0, offset=0, at=at(9), error="<b>x</b>", source="?")
    dead = state.to_json()["dead_letters"]
    assert dead["total"] == 9 and dead["topics"] == {"order_details.dlq": 8, "order_confirmed.dlq": 1}
    assert [d["offset"] for d in dead["recent"]] == [0, 7, 6, 5, 4]
    assert dead["recent"][0]["error"] == "<b>x</b>"  # as data; the page shows it as text
