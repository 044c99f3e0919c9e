"""fold() and merge(): exact revenue, per-day buckets, partition snapshots summing to the whole."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from analytics_backend.aggregate import fold, fold_all
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, OrderDetails, OrderPlaced, OrderVerdict, Totals

DAY = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def verdict(total: str, *, rejected: bool = False, at: datetime = DAY, order_id: str = "o1") -> OrderVerdict:
    amount = Decimal(total)
    placed = OrderPlaced(order_id=order_id, user_id="u1", user_email="a@b.co",
                         order_details=OrderDetails(price=amount), total=amount, time=at)
    if rejected:
        return OrderVerdict(order_id=order_id, status="rejected", reason="no", order=placed)
    return OrderVerdict(order_id=order_id, status="confirmed", order=placed)


def assert_exact(totals: Totals) -> None:
    assert type(totals.revenue) is Decimal
    assert type(totals.average_order_value) is Decimal
    for day in totals.per_day.values():
        assert type(day.revenue) is Decimal


def test_empty_totals() -> None:
    totals = Totals()
    assert (totals.orders_count, totals.rejected_count, totals.revenue) == (0, 0, Decimal("0"))
    assert totals.average_order_value == Decimal("0.00")


def test_confirmed_orders_are_counted_and_summed_exactly() -> None:
    totals = fold_all(Totals(), [verdict("0.10"), verdict("0.20"), verdict("59.97")])
    assert totals.orders_count == 3
    assert totals.revenue == Decimal("60.27")
    assert str(totals.revenue) == "60.27"
    assert_exact(totals)


def test_a_cent_added_many_times_is_exact() -> None:
    totals = fold_all(Totals(), [verdict("0.01")] * 1000)
    assert totals.revenue == Decimal("10.00")


def test_rejections_are_counted_without_revenue() -> None:
    totals = fold_all(Totals(), [verdict("10.00"), verdict("500.00", rejected=True)])
    assert (totals.orders_count, totals.rejected_count) == (1, 1)
    assert totals.revenue == Decimal("10.00")
    assert sum(d.orders for d in totals.per_day.values()) == 1


def test_fold_returns_a_new_value() -> None:
    before = Totals()
    after = fold(before, verdict("1.00"))
    assert before.orders_count == 0
    assert after.orders_count == 1


def test_per_day_buckets_by_order_date() -> None:
    first = datetime(2025, 3, 15, 23, 59, 59, tzinfo=UTC)
    totals = fold_all(Totals(), [verdict("1.00", at=first), verdict("2.00", at=first + timedelta(seconds=1)),
                                 verdict("3.00", at=first + timedelta(hours=1))])
    assert set(totals.per_day) == {date(2025, 3, 15), date(2025, 3, 16)}
    assert totals.per_day[date(2025, 3, 15)].orders == 1
    assert totals.per_day[date(2025, 3, 16)].orders == 2
    assert totals.per_day[date(2025, 3, 16)].revenue == Decimal("5.00")


def test_per_day_bucket_is_the_utc_date_whatever_the_offset() -> None:
    evening_in_new_york = datetime(2025, 3, 15, 22, 0, tzinfo=timezone(timedelta(hours=-5)))
    totals = fold(Totals(), verdict("1.00", at=evening_in_new_york))
    assert list(totals.per_day) == [date(2025, 3, 16)]


@pytest.mark.parametrize(("totals", "average"), [
    (["10.00", "20.00"], "15.00"),
    (["10.00", "10.00", "10.01"], "10.00"),
    (["0.01", "0.02"], "0.02"),
])
def test_average_order_value(totals: list[str], average: str) -> None:
    folded = fold_all(Totals(), [verdict(t) for t in totals])
    assert folded.average_order_value == Decimal(average)
    assert type(folded.average_order_value) is Decimal


def random_verdicts(rng: random.Random, count: int) -> list[OrderVerdict]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [verdict(f"{rng.randint(1, 1_000_000) / 100:.2f}", rejected=rng.random() < 0.2,
                    at=start + timedelta(minutes=rng.randint(0, 60 * 24 * 10)), order_id=f"o{i}")
            for i in range(count)]


def snapshot(partition: int, totals: Totals) -> AnalyticsSnapshot:
    return AnalyticsSnapshot(scope=f"order_confirmed/{partition}", partition=partition,
                             as_of_offset=0, totals=totals)


@pytest.mark.parametrize("seed", range(5))
def test_merge_of_partition_snapshots_equals_folding_everything(seed: int) -> None:
    rng = random.Random(seed)
    verdicts = random_verdicts(rng, 300)
    partitions = rng.randint(1, 6)
    shares: list[list[OrderVerdict]] = [[] for _ in range(partitions)]
    for v in verdicts:
        shares[rng.randrange(partitions)].append(v)
    snapshots = [snapshot(p, fold_all(Totals(), share)) for p, share in enumerate(shares)]
    # Snapshots travel through a compacted topic: merge what a reader would parse.
    read_back = [AnalyticsSnapshot.model_validate_json(s.to_bytes()) for s in snapshots]

    merged = merge(read_back)
    whole = fold_all(Totals(), verdicts)
    assert merged == whole
    assert merged.revenue == sum((v.order.total for v in verdicts if v.status == "confirmed"), Decimal(0))
    assert merged.orders_count + merged.rejected_count == len(verdicts)
    assert merged.average_order_value == whole.average_order_value
    assert_exact(merged)
    assert list(merged.per_day) == sorted(merged.per_day)


def test_merge_of_nothing_is_empty() -> None:
    assert merge([]) == Totals()


def test_snapshot_money_is_a_string_on_the_wire() -> None:
    raw = snapshot(0, fold_all(Totals(), [verdict("59.97")])).to_bytes()
    assert b'"revenue":"59.97"' in raw
    assert b'"average_order_value":"59.97"' in raw
