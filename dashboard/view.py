"""The dashboard's view model: pure, no I/O, no locking (the feed serialises access).

What the order store says goes in as it is: its exact counters (``set_counts``) and its rows
(``load_orders`` with the latest ones, ``apply_rows`` with those that changed since). A row is an
order's whole state, so applying one twice, late or out of order changes nothing a newer one has
not: a row replaces the held order only when its change number (``seq``) is newer. The latest
``max_orders`` orders are held, ranked as the store ranks them (order time, then ``order_id``,
newest first); an older order's change is not held. What Kafka says goes in beside it: the latest
analytics snapshot per scope (``apply``), consumer lag and dead letters.

The orders-per-second chart counts what the store's counters gained from one reading to the next
(received, confirmed, rejected), at the time of that reading: exact however many orders there are,
and in memory only the chart's window.

``to_json()`` returns plain JSON types, money as strings. Every change raises ``version``;
``to_json(since=v)`` carries only the orders changed after version ``v`` (and the ids of every held
order, newest first), which is what the live stream sends after its first message.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from dashboard.order_view import OrderView, Step, fingerprint, iso, money
from dashboard.series import Line, PerSecond
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, DayTotals
from orderflow.store.rows import OrderRow

__all__ = ["COUNTERS", "DashboardState", "OrderView", "Step", "money"]

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed")
RATE_SERIES = ("received", "confirmed", "rejected")
RECENT_DEAD_LETTERS = 5

SortKey = tuple[datetime, str]


@dataclass
class DashboardState:
    """Counts, the latest ``max_orders`` orders, analytics per scope, charts, lag, dead letters."""

    max_orders: int = 200
    window_seconds: int = 300  # the orders-per-second chart
    revenue_points: int = 600  # the revenue chart
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    snapshots: dict[str, AnalyticsSnapshot] = field(default_factory=dict)
    lag: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> its lag, as shown
    dead_letters: dict[str, int] = field(default_factory=dict)  # dead-letter topic -> records
    version: int = field(default=0, init=False)
    _orders: dict[str, OrderView] = field(default_factory=dict, init=False, repr=False)
    _heap: list[tuple[SortKey, str]] = field(default_factory=list, init=False, repr=False)  # oldest on top
    _revenue_total: Decimal = field(default=Decimal("0.00"), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError("max_orders must be at least 1")
        self._rate = PerSecond(RATE_SERIES, self.window_seconds)
        self._revenue = Line(self.revenue_points)
        self._recent_dead: deque[dict[str, Any]] = deque(maxlen=RECENT_DEAD_LETTERS)

    # -- from the order store ----------------------------------------------------------------------

    def set_counts(self, counts: Mapping[str, int], at: datetime, *, baseline: bool = False) -> None:
        """The store's counters as read at ``at``. What received, confirmed and rejected gained since the
        last reading is charted at ``at``, unless this reading is a ``baseline`` (the first one, or the
        first after the store could not be read: what it gained meanwhile belongs to no one second)."""
        new = {name: int(counts.get(name, 0)) for name in COUNTERS}
        if not baseline:
            for name in RATE_SERIES:
                for _ in range(max(0, new[name] - self.counts[name])):
                    self._rate.add(name, at)
        if new != self.counts:
            self.counts = new
            self.version += 1

    def load_orders(self, rows: Iterable[OrderRow]) -> None:
        """Hold exactly the newest ``max_orders`` of ``rows`` (the store's latest orders); an order shown
        as before keeps its version, so a reload sends only what it changed (and a row already held is
        not read again)."""
        before, changed = self._orders, False
        views: list[OrderView] = []
        for row in rows:
            held = before.get(row.order_id)
            view = held if held is not None and held.source == fingerprint(row) else OrderView.of(row)
            if view is not None:
                views.append(view)
        self._orders = {}
        for view in sorted(views, key=lambda v: v.sort_key, reverse=True)[:self.max_orders]:
            held = before.get(view.order_id)
            if held is not None and held == view:
                held.seq, held.source = view.seq, view.source
                self._orders[view.order_id] = held
            else:
                self._orders[view.order_id] = view
                self._touch(view)
                changed = True
        if changed or set(before) != set(self._orders):
            self.version += 1
        self._heap = [(v.sort_key, v.order_id) for v in self._orders.values()]
        heapq.heapify(self._heap)

    def apply_rows(self, rows: Iterable[OrderRow]) -> None:
        """Rows the store changed: each replaces its held order when newer, or joins the held orders
        when it ranks among the newest ``max_orders``."""
        for row in rows:
            held = self._orders.get(row.order_id)
            if held is not None and held.seq >= row.seq:
                continue  # this change, or a later one, is shown already
            if held is None and len(self._orders) >= self.max_orders and row.placed_at is not None \
                    and (row.placed_at, row.order_id) <= self._oldest():
                continue  # older than every held order: only the counts know it
            view = OrderView.of(row)
            if view is None:
                continue  # no order in the row yet: it comes back when the order is read
            if held is not None and held == view:
                held.seq, held.source = view.seq, view.source
                continue
            self._orders[row.order_id] = view
            if held is None or held.sort_key != view.sort_key:
                heapq.heappush(self._heap, (view.sort_key, view.order_id))
            self._touch(view)
            self._evict()

    def order(self, order_id: str) -> OrderView | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> list[OrderView]:
        """Held orders, newest first."""
        return sorted(self._orders.values(), key=lambda o: o.sort_key, reverse=True)

    # -- from Kafka --------------------------------------------------------------------------------

    def apply(self, snap: AnalyticsSnapshot) -> None:
        """An ``analytics_result`` snapshot: the latest value per scope is the truth."""
        if not isinstance(snap, AnalyticsSnapshot):
            raise TypeError(f"not an analytics snapshot: {type(snap).__name__}")
        before = self.snapshots.get(snap.scope)
        self.snapshots[snap.scope] = snap
        self._revenue_total += snap.totals.revenue - (before.totals.revenue if before else Decimal("0"))
        self._revenue.add(snap.occurred_at, money(self._revenue_total) or "0.00")
        self.version += 1

    def apply_all(self, snapshots: Iterable[AnalyticsSnapshot]) -> None:
        for snap in snapshots:
            self.apply(snap)

    def record_lag(self, service: str, topic: str, lag: dict[int, int] | None, at: datetime,
                   error: str | None = None) -> None:
        """What a service's consumer group still has to read (``None``: could not be measured now)."""
        before = self.lag.get(service, {})
        shown = {"topic": topic, "error": error, "total": before.get("total"), "partitions": before.get("partitions")}
        if lag is not None:
            shown.update(total=sum(lag.values()), partitions={str(p): n for p, n in sorted(lag.items())})
        if {k: before.get(k) for k in shown} != shown:
            self.version += 1
        self.lag[service] = {**shown, "at": iso(at)}

    def record_dead_letter(self, topic: str, *, partition: int, offset: int, at: datetime, error: str,
                           source: str) -> None:
        self.version += 1
        self.dead_letters[topic] = self.dead_letters.get(topic, 0) + 1
        self._recent_dead.appendleft({"topic": topic, "partition": partition, "offset": offset, "at": iso(at),
                                      "error": error, "source": source})

    # -- out ---------------------------------------------------------------------------------------

    def to_json(self, now: datetime | None = None, since: int = 0) -> dict[str, Any]:
        """Everything the page shows; ``now`` (UTC) anchors "today" and the per-second chart."""
        totals = merge(self.snapshots.values())
        held = self.orders()
        today = None
        if now is not None:
            day = totals.per_day.get(now.date(), DayTotals())
            today = {"day": now.date().isoformat(), "orders": day.orders, "revenue": money(day.revenue)}
        return {
            "version": self.version,
            "since": since,
            "counts": dict(self.counts),
            "totals": {
                "orders": totals.orders_count,
                "rejected": totals.rejected_count,
                "revenue": money(totals.revenue),
                "average_order_value": money(totals.average_order_value),
                "per_day": [{"day": day.isoformat(), "orders": d.orders, "revenue": money(d.revenue)}
                            for day, d in sorted(totals.per_day.items(), reverse=True)],
                "scopes": len(self.snapshots),
            },
            "today": today,
            "orders": [o.to_json() for o in held if o.version > since],
            "order_ids": [o.order_id for o in held],
            "max_orders": self.max_orders,
            "charts": {"orders_per_second": self._rate.to_json(now), "revenue": self._revenue.to_json()},
            "lag": dict(self.lag),
            "dead_letters": {"total": sum(self.dead_letters.values()), "topics": dict(self.dead_letters),
                             "recent": list(self._recent_dead)},
        }

    # -- holding the newest ------------------------------------------------------------------------

    def _touch(self, entry: OrderView) -> None:
        self.version += 1
        entry.version = self.version

    def _oldest(self) -> SortKey:
        """The sort key of the oldest held order (heap items of replaced or dropped orders skipped)."""
        while True:
            key, order_id = self._heap[0]
            held = self._orders.get(order_id)
            if held is not None and held.sort_key == key:
                return key
            heapq.heappop(self._heap)

    def _evict(self) -> None:
        while len(self._orders) > self.max_orders:
            self._oldest()  # drops stale items from the top of the heap
            _, order_id = heapq.heappop(self._heap)
            del self._orders[order_id]
            self.version += 1
        if len(self._heap) > 2 * self.max_orders + 64:
            self._heap = [(o.sort_key, o.order_id) for o in self._orders.values()]
            heapq.heapify(self._heap)
