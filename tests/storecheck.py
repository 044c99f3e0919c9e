"""What the order topics say each order is, independently of the projector's fold, and whether the
store has caught up with them: the oracle the projector's tests compare the store with."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from order_projector.projector import Projector
from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.kafka import TopicPartition, make_consumer, read_topic
from orderflow.settings import KafkaSettings
from orderflow.store import OrderStore, StoreSettings
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT

TOPICS = (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT)
MODELS: dict[str, Any] = {ORDER_DETAILS: OrderPlaced, ORDER_CONFIRMED: OrderVerdict, ORDER_EMAIL_SENT: EmailOutcome}


@dataclass
class Expected:
    """One order as its topics tell it: the first record of each kind under its id."""

    placed: tuple[int, int, bytes] | None = None  # partition, offset, value
    verdict: OrderVerdict | None = None
    email: EmailOutcome | None = None


@dataclass
class Topics:
    orders: dict[str, Expected] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)  # topic -> records the store cannot hold
    records: int = 0

    def counts(self) -> dict[str, int]:
        kinds = [(e.placed is not None, e.verdict.status if e.verdict else None, e.email.status if e.email else None)
                 for e in self.orders.values()]
        return {
            "received": sum(1 for placed, _, _ in kinds if placed),
            "confirmed": sum(1 for _, v, _ in kinds if v == "confirmed"),
            "rejected": sum(1 for _, v, _ in kinds if v == "rejected"),
            "emails_sent": sum(1 for _, _, m in kinds if m == "sent"),
            "emails_failed": sum(1 for _, _, m in kinds if m == "failed"),
        }


def _whole_cents(total: Decimal) -> bool:
    return (total * 100) == (total * 100).to_integral_value()


def read_orders(settings: KafkaSettings) -> Topics:
    """Every committed record of the three order topics, as of now."""
    seen = Topics()
    for name in TOPICS:
        topic = settings.topic(name)
        for r in read_topic(settings, topic):
            seen.records += 1
            try:
                event = MODELS[name].model_validate_json(r.value or b"")
                order = event if name == ORDER_DETAILS else getattr(event, "order", None)
                if order is not None and not _whole_cents(order.total):
                    raise ValueError("sub-cent total")
            except (ValidationError, ValueError):
                seen.unreadable[name] = seen.unreadable.get(name, 0) + 1
                continue
            expected = seen.orders.setdefault(event.order_id, Expected())
            if name == ORDER_DETAILS and expected.placed is None:
                expected.placed = (r.partition, r.offset, r.value or b"")
            elif name == ORDER_CONFIRMED and expected.verdict is None:
                expected.verdict = event
            elif name == ORDER_EMAIL_SENT and expected.email is None:
                expected.email = event
    return seen


def end_offsets(settings: KafkaSettings) -> dict[tuple[str, int], int]:
    consumer = make_consumer(settings, group_id=None)
    try:
        tps = [TopicPartition(settings.topic(name), p) for name in TOPICS
               for p in sorted(consumer.partitions_for_topic(settings.topic(name)) or ())]
        return {(tp.topic, tp.partition): int(end) for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close(autocommit=False)


def caught_up(settings: KafkaSettings, store: OrderStore) -> bool:
    """Whether the store has read every record of the order topics committed so far."""
    return all(store.offset(topic, p) >= end for (topic, p), end in end_offsets(settings).items())


def stored_offsets(settings: KafkaSettings, store: OrderStore) -> int:
    """The store's offsets summed over the order topics' partitions."""
    return sum(store.offset(topic, p) for topic, p in end_offsets(settings))


def assert_store_matches(settings: KafkaSettings, store: OrderStore) -> Topics:
    """Every order of the topics is its row, and the counters are exactly what the topics say."""
    topics = read_orders(settings)
    for order_id, expected in topics.orders.items():
        row = store.get(order_id)
        assert row is not None, order_id
        order = None
        if expected.placed is not None:
            partition, offset, value = expected.placed
            assert (row.placed_partition, row.placed_offset, row.placed_json) == (partition, offset, value.decode())
            order = OrderPlaced.model_validate_json(value)
        elif expected.verdict is not None:
            order = expected.verdict.order
            assert row.placed_json is None
        if order is not None:
            assert (row.user_id, row.user_email, row.total, row.placed_at) == \
                (order.user_id, order.user_email, order.total, order.time), order_id
        verdict = expected.verdict
        decided = (verdict.status, verdict.reason) if verdict else ("received", None)
        assert (row.status, row.reason) == decided, order_id
        assert row.verdict() == verdict and row.email() == expected.email, order_id
        assert row.email_status == (expected.email.status if expected.email else None), order_id
    assert store.counts() == topics.counts()
    assert len(store.changed_since(0, limit=1000)) == len(topics.orders) or len(topics.orders) > 1000
    return topics


class ProjectorThread:
    """The projector in this process, on a thread; ``stop()`` sets its stop flag and waits for it."""

    def __init__(self, kafka: KafkaSettings, store_url: str, progress_seconds: float = 1.0) -> None:
        self.projector = Projector(kafka, StoreSettings(database_url=store_url), progress_seconds=progress_seconds)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="projector", daemon=True)

    def _run(self) -> None:
        try:
            self.projector.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> ProjectorThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.projector.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the projector did not stop"
        if self.error:
            raise self.error
