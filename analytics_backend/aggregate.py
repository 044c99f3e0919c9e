"""Pure folds over verdicts: exact money, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from orderflow.events import DayTotals, OrderVerdict, Totals


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
