"""transactions_backend: ``order_details`` -> rules -> ``order_confirmed``.

Each ``order_id`` is decided once. Which ids are decided is kept on disk, per input partition, in
the replica's state file (``orderflow.statestore``, under ``TRANSACTIONS_STATE_DIR``), with the input
offset it is exact up to: the checkpoint ``decided_up_to``.

Why the *input* offset and not ``order_confirmed``'s: it is what the stage commits in the same Kafka
transaction as the verdicts, so "the file is exact up to offset c" and "Kafka committed up to offset
k" compare directly, and ``committed(ends)`` hands over the new checkpoint with no further request.
Every readable record in ``[c, k)`` was decided or found decided already, so catching up is reading
that range back and adding its ids (``orderflow.kafka.catchup``); ``k - c`` is at most one batch
after a crash between Kafka's commit and the file's, or what another replica decided meanwhile.
It also holds when an order's key is not its ``order_id`` (its verdict then lands on another
partition of ``order_confirmed``, which a changelog read would miss). The price: with
``KAFKA_EXACTLY_ONCE=false``, a crash between the verdicts' acknowledgement and the offsets' commit
decides that batch again, as at-least-once says.

A batch's new ids stay in memory (for repeats within the batch) until Kafka commits it, then go to
the file with the new checkpoint in one SQLite transaction; a rewind drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from orderflow import metrics
from orderflow.events import OrderPlaced
from orderflow.kafka import (
    Inbound,
    Output,
    Record,
    Stage,
    access_at_start,
    bind_to_topics,
    catch_up,
    committed_offsets,
    ensure_topics,
    parse_value,
)
from orderflow.settings import KafkaSettings, StatefulServiceSettings, configure_logging
from orderflow.statestore import StateStore, StateWriter, state_file
from orderflow.stopflag import StopFlag
from orderflow.tally import Tally
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, TRANSACTIONS_GROUP
from transactions_backend.rules import Limits, decide

log = logging.getLogger(__name__)
tally = Tally(log, "verdicts")

DECIDED = "decided"  # the state's set of decided order ids, per partition of order_details
DECIDED_UP_TO = "decided_up_to"  # its checkpoint: an order_details offset


class Settings(StatefulServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSACTIONS_")
    DEFAULT_METRICS_PORT: ClassVar[int] = 9101

    max_order_total: Decimal = Field(Decimal("10000.00"), gt=0)
    max_quantity_per_item: int = Field(100, ge=1)


class Verdicts:
    """Decides each order once: an ``order_id`` already decided (a redelivery or a repeat POST) is skipped."""

    def __init__(self, kafka: KafkaSettings, limits: Limits, state: StateStore, *, group: str) -> None:
        self.kafka = kafka
        self.limits = limits
        self.state = state
        self.group = group
        self.in_topic = kafka.topic(ORDER_DETAILS)
        self.out_topic = kafka.topic(ORDER_CONFIRMED)
        self.pending: dict[int, set[str]] = {}  # decided in the batch Kafka has not committed yet
        self.caught_up = 0  # records read back by every restore so far
        self._bound = False  # whether the state file was checked against the topics' ids

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        self.pending.clear()
        if not self._bound:
            bind_to_topics(self.kafka, self.state, [self.in_topic])
            self._bound = True
        committed = committed_offsets(self.kafka, self.group, self.in_topic, partitions)
        self.caught_up += catch_up(self.kafka, self.state, topic=self.in_topic, checkpoint=DECIDED_UP_TO,
                                   partitions=partitions, until=committed, fold=self._fold)
        return {}

    @staticmethod
    def _fold(tx: StateWriter, records: Sequence[Record]) -> None:
        ids: dict[int, list[str]] = {}
        for r in records:
            try:
                ids.setdefault(r.partition, []).append(parse_value(OrderPlaced, r.value).order_id)
            except ValueError:
                continue  # dead-lettered when it was read: never decided
        for partition, keys in ids.items():
            tx.add(DECIDED, partition, keys)

    def process(self, batch: Sequence[Inbound[OrderPlaced]], ends: dict[int, int]) -> list[Output]:
        wanted: dict[int, set[str]] = {}
        for item in batch:
            wanted.setdefault(item.record.partition, set()).add(item.value.order_id)
        decided = self.state.find(DECIDED, wanted)
        outputs = []
        for item in batch:
            order, partition = item.value, item.record.partition
            pending = self.pending.setdefault(partition, set())
            if order.order_id in pending or order.order_id in decided.get(partition, {}):
                log.info("order %s already decided; skipping the repeat", order.order_id,
                         extra={"order_id": order.order_id})
                continue
            pending.add(order.order_id)
            verdict = decide(order, self.limits)
            metrics.VERDICTS.labels(verdict.status).inc()
            tally.note(verdict.status)
            # A rejection is worth a line of its own; the confirmations are followed at DEBUG.
            log.log(logging.DEBUG if verdict.status == "confirmed" else logging.INFO,
                    "order %s %s%s", order.order_id, verdict.status, f" ({verdict.reason})" if verdict.reason else "",
                    extra={"order_id": order.order_id, "status": verdict.status, "reason": verdict.reason})
            outputs.append(Output(self.out_topic, order.order_id, verdict.to_bytes()))
        return outputs

    def committed(self, ends: dict[int, int]) -> None:
        with self.state.transaction() as tx:
            for partition, ids in self.pending.items():
                tx.add(DECIDED, partition, ids)
            for partition, end in ends.items():
                tx.advance(DECIDED_UP_TO, partition, end)
        self.pending.clear()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    access_at_start(settings.kafka)
    metrics.serve(settings, metrics.STAGE, metrics.TRANSACTIONS)
    ensure_topics(settings.kafka, timeout=None)  # a broker away at start-up is waited for
    limits = Limits(settings.max_order_total, settings.max_quantity_per_item)
    group = settings.kafka.group(TRANSACTIONS_GROUP)
    with StateStore.open(state_file(settings.state_dir, group, settings.kafka.replica_id)) as state:
        Stage(
            name="transactions_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_DETAILS),
            model=OrderPlaced, processor=Verdicts(settings.kafka, limits, state, group=group), group_id=group,
            health_file=settings.health_file, stop=StopFlag().install(),
        ).run()
