"""The dashboard's view model: pure, no I/O, no locking (the feed serialises access).

``DashboardState.apply(event)`` folds one parsed event into counts, a bounded set of the latest
orders with their timeline, the latest analytics snapshot per scope and the charts' bounded series;
the feed also records consumer lag and dead letters here. Events of one order may arrive in any
order across topics; a redelivered event is not counted twice while its order is still held.

``to_json()`` returns plain JSON types, money as strings. Every change raises ``version``;
``to_json(since=v)`` carries only the orders changed after version ``v`` (and the ids of every held
order, newest first), which is what the live stream sends after its first message.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from analytics_backend.aggregate import merge
from dashboard.order_view import OrderView, Step, iso, money
from dashboard.series import Line, PerSecond
from orderflow.events import AnalyticsSnapshot, DayTotals, EmailOutcome, OrderPlaced, OrderVerdict

__all__ = ["COUNTERS", "DashboardEvent", "DashboardState", "OrderView", "Step", "money"]

DashboardEvent = OrderPlaced | OrderVerdict | EmailOutcome | AnalyticsSnapshot

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed")
RATE_SERIES = ("received", "confirmed", "rejected")
RECENT_DEAD_LETTERS = 5
_EMAIL_COUNTER = {"sent": "emails_sent", "failed": "emails_failed"}


@dataclass
class DashboardState:
    """Counts, the latest ``max_orders`` orders (by received time), analytics per scope, charts, lag."""

    max_orders: int = 200
    window_seconds: int = 300  # the orders-per-second chart
    revenue_points: int = 600  # the revenue chart
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    snapshots: dict[str, AnalyticsSnapshot] = field(default_factory=dict)
    lag: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> its lag, as shown
    dead_letters: dict[str, int] = field(default_factory=dict)  # dead-letter topic -> records
    version: int = field(default=0, init=False)
    _orders: dict[str, OrderView] = field(default_factory=dict, init=False, repr=False)
    _heap: list[tuple[tuple[datetime, int], str]] = field(default_factory=list, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)
    _revenue_total: Decimal = field(default=Decimal("0.00"), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError("max_orders must be at least 1")
        self._rate = PerSecond(RATE_SERIES, self.window_seconds)
        self._revenue = Line(self.revenue_points)
        self._recent_dead: deque[dict[str, Any]] = deque(maxlen=RECENT_DEAD_LETTERS)

    def apply(self, event: DashboardEvent) -> None:
        match event:
            case OrderPlaced():
                self._received(self._entry(event.order_id, event.time), event)
            case OrderVerdict():
                self._verdict(event)
            case EmailOutcome():
                self._email(event)
            case AnalyticsSnapshot():
                self._snapshot(event)
            case _:
                raise TypeError(f"not a dashboard event: {type(event).__name__}")

    def apply_all(self, events: Iterable[DashboardEvent]) -> None:
        for event in events:
            self.apply(event)

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

    def order(self, order_id: str) -> OrderView | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> list[OrderView]:
        """Held orders, newest first."""
        return sorted(self._orders.values(), key=lambda o: o.sort_key, reverse=True)

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

    # -- folding -------------------------------------------------------------------------------

    def _touch(self, entry: OrderView) -> None:
        self.version += 1
        entry.version = self.version

    def _bump(self, counter: str, by: int = 1) -> None:
        self.counts[counter] += by

    def _entry(self, order_id: str, when: datetime) -> OrderView:
        entry = self._orders.get(order_id)
        if entry is None:
            self._seq += 1
            entry = OrderView(order_id, (when, self._seq))
            self._touch(entry)
            self._orders[order_id] = entry
            heapq.heappush(self._heap, (entry.sort_key, order_id))
            self._evict()
        return entry

    def _received(self, entry: OrderView, order: OrderPlaced) -> None:
        if entry.received_at is None:
            entry.describe(order)
            self._touch(entry)
            if entry.sort_key[0] != order.time:  # first seen through a later event: re-rank by receipt
                entry.sort_key = (order.time, entry.sort_key[1])
                heapq.heappush(self._heap, (entry.sort_key, entry.order_id))
        if not entry.received:
            entry.received = True
            self._touch(entry)
            self._bump("received")
            self._rate.add("received", order.time)

    def _verdict(self, verdict: OrderVerdict) -> None:
        entry = self._entry(verdict.order_id, verdict.order.time)
        self._received(entry, verdict.order)  # a verdict proves the order was received
        self._step(entry, "verdict", verdict.status, verdict.status, verdict.occurred_at, verdict.reason)

    def _email(self, outcome: EmailOutcome) -> None:
        entry = self._entry(outcome.order_id, outcome.occurred_at)
        self._step(entry, "email", outcome.status, _EMAIL_COUNTER[outcome.status], outcome.occurred_at,
                   outcome.error, outcome.attempts)

    def _step(self, entry: OrderView, name: str, status: str, counter: str, at: datetime,
              detail: str | None, attempts: int | None = None) -> None:
        before: Step | None = getattr(entry, name)
        if before is not None and before.status == status:
            return  # redelivered: the first one stands
        if before is not None:  # a changed outcome moves the order from one counter to the other
            old = before.status if name == "verdict" else _EMAIL_COUNTER[before.status]
            self._bump(old, -1)
        elif name == "verdict":
            self._rate.add(status, at)
        self._bump(counter)
        setattr(entry, name, Step(status, at, detail, attempts))
        self._touch(entry)

    def _snapshot(self, snap: AnalyticsSnapshot) -> None:
        before = self.snapshots.get(snap.scope)
        self.snapshots[snap.scope] = snap  # the latest value per key is the truth
        self._revenue_total += snap.totals.revenue - (before.totals.revenue if before else Decimal("0"))
        self._revenue.add(snap.occurred_at, money(self._revenue_total) or "0.00")
        self.version += 1

    def _evict(self) -> None:
        while len(self._orders) > self.max_orders:
            key, order_id = heapq.heappop(self._heap)
            entry = self._orders.get(order_id)
            if entry is not None and entry.sort_key == key:  # skip stale heap items
                del self._orders[order_id]
        if len(self._heap) > 2 * self.max_orders + 64:
            self._heap = [(o.sort_key, o.order_id) for o in self._orders.values()]
            heapq.heapify(self._heap)
