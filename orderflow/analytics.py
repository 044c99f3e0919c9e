"""Global totals from ``analytics_result``: what every reader of the snapshots agrees on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from orderflow.events import AnalyticsSnapshot, DayTotals, Totals


def merge(snapshots: Iterable[AnalyticsSnapshot]) -> Totals:
    """Global totals: the sum of the latest snapshot of every partition."""
    orders = rejected = 0
    revenue = Decimal("0.00")
    per_day: dict[date, DayTotals] = {}
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
