"""10,000 orders through the pure view model (as the order store's rows and counters, and analytics
snapshots): what it holds and what it sends stay bounded."""

from __future__ import annotations

import gc
import json
import sys
import types
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

from analytics_backend.aggregate import fold
from dashboard.view import DashboardState
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, LineItem, OrderDetails, OrderPlaced, Totals
from tests.unit.test_dashboard_view import T0, Book, Event, email, placed, shown, verdict

ORDERS = 10_000
PARTITIONS = 6
CAP = 200


def events(first: int, last: int, totals: dict[int, Totals]) -> Iterator[Event | AnalyticsSnapshot]:
    """Each order's three events, and after every tenth order an analytics snapshot of its partition."""
    for i in range(first, last):
        details = OrderDetails(items=[LineItem(product=f"Chair model {i % 37}", quantity=1 + i % 4,
                                               unit_price=Decimal("19.99"))])
        order = OrderPlaced(order_id=f"o{i:05d}", user_id=f"u{i % 500}", user_email="ada@example.com",
                            order_details=details, total=details.total, time=T0 + timedelta(seconds=i / 4))
        decided = verdict(order, "rejected" if i % 10 == 0 else "confirmed", "limit" if i % 10 == 0 else None)
        yield order
        yield decided
        if decided.status == "confirmed":
            yield email(order)
        p = i % PARTITIONS
        totals[p] = fold(totals.get(p, Totals()), decided)
        if i // PARTITIONS % 10 == 9 or i >= last - PARTITIONS:  # every tenth of a partition's, and its last
            yield AnalyticsSnapshot(scope=f"order_confirmed/{p}", partition=p, as_of_offset=i, totals=totals[p],
                                    occurred_at=order.time)


def feed(state: DashboardState, book: Book, stream: Iterator[Event | AnalyticsSnapshot]) -> None:
    """An order's events through the store's fold in one turn of the feed; the snapshots as read from Kafka."""
    pending: list[Event] = []
    for event in stream:
        if isinstance(event, AnalyticsSnapshot):
            state.apply(event)
        elif pending and event.order_id != pending[0].order_id:
            shown(state, book, *pending)
            pending = [event]
        else:
            pending.append(event)
    shown(state, book, *pending)


def held_bytes(root: object) -> int:
    """The memory of everything ``root`` holds (its objects and theirs; classes and functions are shared)."""
    seen: set[int] = set()
    todo, total = [root], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def test_ten_thousand_orders_keep_the_state_and_its_json_bounded() -> None:
    state = DashboardState(max_orders=CAP, window_seconds=300, revenue_points=600)
    folded: dict[int, Totals] = {}
    book = Book()
    feed(state, book, events(0, 2_000, folded))
    held_at_2k = held_bytes(state)
    feed(state, book, events(2_000, ORDERS, folded))
    held_at_10k = held_bytes(state)

    assert len(state) == CAP and len(state._heap) <= 2 * CAP + 64 + 1
    assert state.counts == {"received": ORDERS, "confirmed": 9_000, "rejected": 1_000, "emails_sent": 9_000,
                            "emails_failed": 0}
    assert held_at_10k - held_at_2k < 128 * 1024  # five times the orders, about the same memory (charts fill up)

    now = T0 + timedelta(seconds=ORDERS / 4)
    data = state.to_json(now=now)
    assert len(data["orders"]) == len(data["order_ids"]) == CAP
    assert data["order_ids"][0] == f"o{ORDERS - 1:05d}"  # the newest
    assert len(data["charts"]["orders_per_second"]["t"]) == 300 and len(data["charts"]["revenue"]["t"]) <= 600
    assert len(data["totals"]["per_day"]) == 1
    # Totals shown are what analytics_result holds: the latest snapshot per scope, merged.
    expected = merge(state.snapshots.values())
    assert data["totals"]["revenue"] == str(expected.revenue) == data["charts"]["revenue"]["v"][-1]
    assert (data["totals"]["orders"], data["totals"]["rejected"]) == (9_000, 1_000)
    confirmed_revenue = sum((Decimal("19.99") * (1 + i % 4) for i in range(ORDERS) if i % 10), Decimal("0.00"))
    assert data["totals"]["revenue"] == str(confirmed_revenue)

    full = len(json.dumps(data))
    assert full < 150_000  # ~ what /api/state and a stream's first message weigh with the default cap
    version = data["version"]
    shown(state, book, verdict(placed("o-new", minute=ORDERS)))
    diff = state.to_json(now=now, since=version)
    assert len(diff["orders"]) == 1 and len(diff["order_ids"]) == CAP
    assert len(json.dumps(diff)) < full / 3  # what a stream sends per change
