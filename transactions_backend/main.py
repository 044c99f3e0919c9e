"""transactions_backend: ``order_details`` -> rules -> ``order_confirmed``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from orderflow import metrics
from orderflow.events import OrderPlaced
from orderflow.kafka import Inbound, Output, Stage, access_at_start, ensure_topics, keys_by_partition
from orderflow.settings import ConsumerServiceSettings, KafkaSettings, configure_logging
from orderflow.stopflag import StopFlag
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, TRANSACTIONS_GROUP
from transactions_backend.rules import Limits, decide

log = logging.getLogger(__name__)


class Settings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSACTIONS_")
    DEFAULT_METRICS_PORT: ClassVar[int] = 9101

    max_order_total: Decimal = Field(Decimal("10000.00"), gt=0)
    max_quantity_per_item: int = Field(100, ge=1)


class Verdicts:
    """Decides each order once: an ``order_id`` already decided (a redelivery or a repeat POST) is skipped.

    ``order_details`` and ``order_confirmed`` are both keyed by ``order_id`` with the same partition
    count, so the orders decided for input partition ``p`` are exactly those in output partition ``p``.
    """

    def __init__(self, kafka: KafkaSettings, limits: Limits) -> None:
        self.kafka = kafka
        self.limits = limits
        self.out_topic = kafka.topic(ORDER_CONFIRMED)
        self.decided: dict[int, set[str]] = {}

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        self.decided.update(keys_by_partition(self.kafka, self.out_topic, partitions))
        return {}

    def process(self, batch: Sequence[Inbound[OrderPlaced]], ends: dict[int, int]) -> list[Output]:
        outputs = []
        for item in batch:
            order = item.value
            seen = self.decided.setdefault(item.record.partition, set())
            if order.order_id in seen:
                log.info("order %s already decided; skipping the repeat", order.order_id,
                         extra={"order_id": order.order_id})
                continue
            seen.add(order.order_id)
            verdict = decide(order, self.limits)
            metrics.VERDICTS.labels(verdict.status).inc()
            log.info("order %s %s%s", order.order_id, verdict.status, f" ({verdict.reason})" if verdict.reason else "",
                     extra={"order_id": order.order_id, "status": verdict.status, "reason": verdict.reason})
            outputs.append(Output(self.out_topic, order.order_id, verdict.to_bytes()))
        return outputs


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    access_at_start(settings.kafka)
    metrics.serve(settings, metrics.STAGE, metrics.TRANSACTIONS)
    ensure_topics(settings.kafka)
    limits = Limits(settings.max_order_total, settings.max_quantity_per_item)
    Stage(
        name="transactions_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_DETAILS),
        model=OrderPlaced, processor=Verdicts(settings.kafka, limits),
        group_id=settings.kafka.group(TRANSACTIONS_GROUP),
        health_file=settings.health_file, stop=StopFlag().install(),
    ).run()
