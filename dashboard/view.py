"""The dashboard's view model: pure, no I/O, no locking (the feed serialises access).

``DashboardState.apply(event)`` folds one parsed event into counts, a bounded set of the latest
orders with their timeline, the latest analytics snapshot per scope and the charts' bounded series;
the feed also records consumer lag and dead letters here. Events of one order may arrive in any
order across topics. ``received`` counts ``OrderPlaced`` events only. Orders are ranked by their own
time (an email outcome does not carry it, so one read before its order waits aside for it). An
evicted order keeps only what was counted for it (among the last ``EVICTED_KEPT``), so a late or
redelivered event neither brings it back nor counts it twice.

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
from typing import Any, NamedTuple

from dashboard.order_view import OrderView, Step, iso, money
from dashboard.series import Line, PerSecond
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, DayTotals, EmailOutcome, OrderPlaced, OrderVerdict

__all__ = ["COUNTERS", "DashboardEvent", "DashboardState", "OrderView", "Step", "money"]

DashboardEvent = OrderPlaced | OrderVerdict | EmailOutcome | AnalyticsSnapshot

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed")
RATE_SERIES = ("received", "confirmed", "rejected")
RECENT_DEAD_LETTERS = 5
EVICTED_KEPT = 4096  # evicted orders whose counted steps are remembered; also emails waiting for their order
_COUNTER = {"verdict": {"confirmed": "confirmed", "rejected": "rejected"},
            "email": {"sent": "emails_sent", "failed": "emails_failed"}}


class Counted(NamedTuple):
    """What the counters hold for an evicted order, whose details are dropped."""

    received: bool
    verdict: str | None
    email: str | None


def _status(step: Step | None) -> str | None:
    return None if step is None else step.status


def _keep(bounded: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key``, dropping the oldest key beyond ``EVICTED_KEPT``."""
    bounded[key] = value
    if len(bounded) > EVICTED_KEPT:
        del bounded[next(iter(bounded))]


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
    _evicted: dict[str, Counted] = field(default_factory=dict, init=False, repr=False)
    _early_emails: dict[str, Step] = field(default_factory=dict, init=False, repr=False)  # order not seen yet

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError("max_orders must be at least 1")
        self._rate = PerSecond(RATE_SERIES, self.window_seconds)
        self._revenue = Line(self.revenue_points)
        self._recent_dead: deque[dict[str, Any]] = deque(maxlen=RECENT_DEAD_LETTERS)

    def apply(self, event: DashboardEvent) -> None:
        match event:
            case OrderPlaced():
                self._placed(event)
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

    def _count(self, name: str, before: str | None, status: str, at: datetime) -> bool:
        """Move an order's step from ``before`` to ``status`` in the counters; False for a redelivery."""
        if before == status:
            return False
        counter = _COUNTER[name]
        if before is not None:  # a changed outcome moves the order from one counter to the other
            self.counts[counter[before]] -= 1
        elif name == "verdict":
            self._rate.add(status, at)
        self.counts[counter[status]] += 1
        self.version += 1
        return True

    def _entry(self, order_id: str, when: datetime) -> OrderView | None:
        """The held order (made if new, ranked by ``when``), or None when it is or at once gets evicted."""
        entry = self._orders.get(order_id)
        if entry is None and order_id not in self._evicted:
            self._seq += 1
            entry = OrderView(order_id, (when, self._seq), email=self._early_emails.pop(order_id, None))
            self._orders[order_id] = entry
            heapq.heappush(self._heap, (entry.sort_key, order_id))
            self._evict()
            entry = self._orders.get(order_id)  # gone again when older than every held order
            if entry is not None:
                self._touch(entry)
        return entry

    def _placed(self, order: OrderPlaced) -> None:
        entry = self._entry(order.order_id, order.time)
        if entry is None:
            gone = self._evicted[order.order_id]
            if gone.received:
                return
            self._evicted[order.order_id] = gone._replace(received=True)
            self.version += 1  # only the counts change
        else:
            self._describe(entry, order)
            if entry.received:
                return
            entry.received = True
            self._touch(entry)
        self.counts["received"] += 1
        self._rate.add("received", order.time)

    def _describe(self, entry: OrderView, order: OrderPlaced) -> None:
        if entry.received_at is None:
            entry.describe(order)
            self._touch(entry)

    def _verdict(self, verdict: OrderVerdict) -> None:
        entry = self._entry(verdict.order_id, verdict.order.time)
        if entry is None:
            gone = self._evicted[verdict.order_id]
            if self._count("verdict", gone.verdict, verdict.status, verdict.occurred_at):
                self._evicted[verdict.order_id] = gone._replace(verdict=verdict.status)
            return
        self._describe(entry, verdict.order)  # a verdict carries its order
        self._step(entry, "verdict", Step(verdict.status, verdict.occurred_at, verdict.reason))

    def _email(self, outcome: EmailOutcome) -> None:
        order_id = outcome.order_id
        step = Step(outcome.status, outcome.occurred_at, outcome.error, outcome.attempts)
        entry = self._orders.get(order_id)  # an email does not carry its order's time, so it makes no entry
        if entry is not None:
            self._step(entry, "email", step)
        elif (gone := self._evicted.get(order_id)) is not None:
            if self._count("email", gone.email, step.status, step.at):
                self._evicted[order_id] = gone._replace(email=step.status)
        else:  # read before its order: waits aside until the order or its verdict comes
            early = self._early_emails.get(order_id)
            if self._count("email", _status(early), step.status, step.at):
                _keep(self._early_emails, order_id, step)

    def _step(self, entry: OrderView, name: str, step: Step) -> None:
        before: Step | None = getattr(entry, name)
        if self._count(name, _status(before), step.status, step.at):  # else redelivered: the first stands
            setattr(entry, name, step)
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
                _keep(self._evicted, order_id, Counted(entry.received, _status(entry.verdict), _status(entry.email)))
        if len(self._heap) > 2 * self.max_orders + 64:
            self._heap = [(o.sort_key, o.order_id) for o in self._orders.values()]
            heapq.heapify(self._heap)
