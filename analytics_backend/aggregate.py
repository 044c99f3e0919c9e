"""Pure folds over verdicts and snapshots: exact money, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from orderflow.events import AnalyticsSnapshot, DayTotals, OrderVerdict, Totals


def fold(totals: Totals, verdict: OrderVerdict) -> Totals:
    """Totals after one more verdict. Rejections are counted, never summed into revenue."""
    if verdict.status == "rejected":
        return totals.model_copy(update={"rejected_count": totals.rejected_count + 1})
    amount = verdict.order.total
    day = verdict.order.time.date()
    before = totals.per_day.get(day, DayTotals())
    per_day = {**totals.per_day, day: DayTotals(orders=before.orders + 1, revenue=before.revenue + amount)}
    return Totals(
        orders_count=totals.orders_count + 1,
        rejected_count=totals.rejected_count,
        revenue=totals.revenue + amount,
        per_day=per_day,
    )


def fold_all(totals: Totals, verdicts: Iterable[OrderVerdict]) -> Totals:
    for verdict in verdicts:
        totals = fold(totals, verdict)
    return totals


def merge(snapshots: Iterable[AnalyticsSnapshot]) -> Totals:
    """Global totals: the sum of the latest snapshot of every partition."""
    orders = rejected = 0
    revenue = Decimal("0.00")
    per_day: dict = {}
    for snap in snapshots:
        t = snap.totals
        orders += t.orders_count
        rejected += t.rejected_count
        revenue += t.revenue
        for day, d in t.per_day.items():
            before = per_day.get(day, DayTotals())
            per_day[day] = DayTotals(orders=before.orders + d.orders, revenue=before.revenue + d.revenue)
    return Totals(orders_count=orders, rejected_count=rejected, revenue=revenue,
                  per_day=dict(sorted(per_day.items())))
