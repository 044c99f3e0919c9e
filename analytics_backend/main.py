"""analytics_backend: ``order_confirmed`` -> running totals -> ``analytics_result``.

State is one ``Totals`` per input partition. Each snapshot names the offset it is exact up to, and
is written in the same transaction as the consumer offsets; on (re)assignment a partition's state
comes back from its latest snapshot and reading resumes at that offset, so nothing is counted
twice or lost across restarts, crashes and rebalances between replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from analytics_backend.aggregate import fold_all
from orderflow import metrics
from orderflow.events import AnalyticsSnapshot, OrderVerdict, Totals
from orderflow.kafka import Inbound, Output, Stage, access_at_start, ensure_topics, read_topic
from orderflow.settings import ConsumerServiceSettings, KafkaSettings, configure_logging
from orderflow.stopflag import StopFlag
from orderflow.topics import ANALYTICS_GROUP, ANALYTICS_RESULT, ORDER_CONFIRMED


class Settings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_")

    DEFAULT_METRICS_PORT: ClassVar[int] = 9103


def scope(partition: int) -> str:
    return f"{ORDER_CONFIRMED}/{partition}"


class RunningTotals:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.out_topic = kafka.topic(ANALYTICS_RESULT)
        self.totals: dict[int, Totals] = {}

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        latest: dict[str, AnalyticsSnapshot] = {}
        for r in read_topic(self.kafka, self.out_topic):
            if r.key is not None and r.value is not None:
                latest[r.key.decode()] = AnalyticsSnapshot.model_validate_json(r.value)
        resume = {}
        for p in partitions:
            snap = latest.get(scope(p))
            self.totals[p] = snap.totals if snap else Totals()
            if snap:
                resume[p] = snap.as_of_offset
        return resume

    def committed(self, ends: dict[int, int]) -> None:
        """Nothing to add: the snapshots, state and checkpoint in one, were in the committed transaction."""

    def process(self, batch: Sequence[Inbound[OrderVerdict]], ends: dict[int, int]) -> list[Output]:
        """One snapshot per partition of the batch, exact up to where the batch ends (unreadable
        records included: they went to the dead-letter topic and are not read again)."""
        by_partition: dict[int, list[OrderVerdict]] = {p: [] for p in ends}
        for item in batch:
            by_partition[item.record.partition].append(item.value)
        outputs = []
        for p, verdicts in by_partition.items():
            self.totals[p] = fold_all(self.totals.get(p, Totals()), verdicts)
            snap = AnalyticsSnapshot(scope=scope(p), partition=p, as_of_offset=ends[p], totals=self.totals[p])
            outputs.append(Output(self.out_topic, snap.scope, snap.to_bytes()))
        return outputs


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    access_at_start(settings.kafka)
    metrics.serve(settings, metrics.STAGE)
    ensure_topics(settings.kafka, timeout=None)  # a broker away at start-up is waited for
    Stage(
        name="analytics_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_CONFIRMED),
        model=OrderVerdict, processor=RunningTotals(settings.kafka),
        group_id=settings.kafka.group(ANALYTICS_GROUP), health_file=settings.health_file, stop=StopFlag().install(),
    ).run()
