"""The projector against a real broker and a real database (SQLite and PostgreSQL): every order of a
mixed stream ends as the right row, the counters are exact, unreadable records are dead letters, a
restart reads only what came after the stored offsets, and a SIGKILL loses and doubles nothing."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.kafka import dead_letters
from orderflow.settings import KafkaSettings
from orderflow.store import OrderStore, StoreSettings
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT
from tests.storecheck import ProjectorThread, assert_store_matches, caught_up, end_offsets, stored_offsets
from tests.support import ServiceProcess, produce, service_env, wait_until
from tests.unit.test_store_fold import email, placed, verdict

pytestmark = pytest.mark.integration


@pytest.fixture
def store(store_url: str) -> Iterator[OrderStore]:
    reader = OrderStore.open(StoreSettings(database_url=store_url), upgrade=True)
    yield reader
    reader.close()


def send(settings: KafkaSettings, topic: str, *events: OrderPlaced | OrderVerdict | EmailOutcome) -> None:
    produce(settings, settings.topic(topic), [(e.order_id, e.to_bytes()) for e in events])


def orders_stream(settings: KafkaSettings, prefix: str, count: int) -> None:
    """``count`` orders, each placed, decided (every fourth rejected) and, when confirmed, emailed (every
    fifth email failed); every seventh placement is posted twice."""
    orders = [placed(f"{prefix}-{i}", price=f"{i % 90 + 1}.25", user_id=f"u-{i % 5}") for i in range(count)]
    send(settings, ORDER_DETAILS, *orders, *orders[::7])
    verdicts = [verdict(o, "rejected", "over the limit") if i % 4 == 0 else verdict(o) for i, o in enumerate(orders)]
    send(settings, ORDER_CONFIRMED, *verdicts)
    send(settings, ORDER_EMAIL_SENT, *[email(v.order_id, "failed" if i % 5 == 0 else "sent")
                                       for i, v in enumerate(verdicts) if v.status == "confirmed"])


POISON = [b"not json", b'{"order_id": "p-1"}', b"\xff\xfe", None]


def test_a_mixed_stream_ends_as_the_right_rows_and_counters(kafka_settings: KafkaSettings, store: OrderStore,
                                                             store_url: str) -> None:
    orders_stream(kafka_settings, "m", 40)
    first, racing = placed("race", price="10.00"), placed("race", price="99.00", user_id="u-other")
    send(kafka_settings, ORDER_DETAILS, first, racing)  # two POSTs under one id: the first in the log is the order
    send(kafka_settings, ORDER_CONFIRMED, verdict(first), verdict(first))  # redelivered verdict
    early = placed("early", price="5.00")
    send(kafka_settings, ORDER_CONFIRMED, verdict(early))  # its verdict before its placement
    sub_cent = placed("cents").model_copy(update={"total": Decimal("1.001")})
    send(kafka_settings, ORDER_DETAILS, sub_cent)
    for name in (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT):
        produce(kafka_settings, kafka_settings.topic(name), [(f"poison-{i}", v or b"") for i, v in enumerate(POISON)])
    with ProjectorThread(kafka_settings, store_url):
        wait_until(lambda: caught_up(kafka_settings, store), 120, what="the store to catch up")
        row = store.get("early")
        assert row is not None and row.status == "confirmed" and row.placed_json is None and row.order() == early
        assert store.counts()["received"] == 41  # 40 + race; "early" is not placed yet
        send(kafka_settings, ORDER_DETAILS, early)
        wait_until(lambda: caught_up(kafka_settings, store), 120, what="the store to read the late placement")
    topics = assert_store_matches(kafka_settings, store)
    assert store.get("race").placed_json == first.to_bytes().decode() and store.get("race").total_cents == 1000
    assert store.get("early").placed_json == early.to_bytes().decode()
    assert store.get("cents") is None and store.get("p-1") is None
    assert store.counts() == {"received": 42, "confirmed": 32, "rejected": 10, "emails_sent": 24, "emails_failed": 6}
    assert topics.unreadable == {ORDER_DETAILS: 5, ORDER_CONFIRMED: 4, ORDER_EMAIL_SENT: 4}
    for name, count in topics.unreadable.items():
        dead = list(dead_letters(kafka_settings, name))
        assert len(dead) == count
        headers = [dict(r.headers) for r in dead]
        assert {h["consumer_group"] for h in headers} == {b"order_projector"}
        assert {h["source_topic"] for h in headers} == {kafka_settings.topic(name).encode()}
    assert store.offset(kafka_settings.topic(ORDER_DETAILS), 0) > 0


def projector_process(settings: KafkaSettings, store_url: str, logs: Path, name: str) -> ServiceProcess:
    env = service_env(settings, STORE_DATABASE_URL=store_url, PROJECTOR_METRICS_PORT="0", KAFKA_MAX_BATCH="25",
                      PROJECTOR_PROGRESS_SECONDS="1", LOG_FORMAT="text")
    return ServiceProcess("order_projector", env, logs, name=name)


def started(service: ServiceProcess) -> ServiceProcess:
    """The process once its loop runs (its stop flag installed): a SIGTERM from now on is a clean stop."""
    service.start()
    wait_until(lambda: "projecting" in service.log() or not service.alive(), 60, what=f"{service.name} to start")
    assert service.alive(), service.log()[-3000:]
    return service


def records_read(service: ServiceProcess) -> int:
    found = re.findall(r"stopped; (\d+) records read", service.log())
    assert len(found) == 1, service.log()[-3000:]
    return int(found[0])


def test_a_restart_reads_only_the_records_after_the_stored_offsets(kafka_settings: KafkaSettings, store: OrderStore,
                                                                    store_url: str, logs_dir: Path) -> None:
    orders_stream(kafka_settings, "a", 30)
    first = started(projector_process(kafka_settings, store_url, logs_dir, "first"))
    wait_until(lambda: caught_up(kafka_settings, store), 120, what="the first run to catch up")
    assert first.stop() == 0
    everything = sum(end_offsets(kafka_settings).values())
    assert records_read(first) == everything  # nothing was produced transactionally: one offset, one record
    orders_stream(kafka_settings, "b", 12)
    more = sum(end_offsets(kafka_settings).values()) - everything
    second = started(projector_process(kafka_settings, store_url, logs_dir, "second"))
    wait_until(lambda: caught_up(kafka_settings, store), 120, what="the second run to catch up")
    assert second.stop() == 0
    assert records_read(second) == more > 0
    assert "resuming from the stored offsets" in second.log()
    assert_store_matches(kafka_settings, store)


def test_sigkill_mid_stream_loses_and_doubles_nothing(kafka_settings: KafkaSettings, store: OrderStore,
                                                      store_url: str, logs_dir: Path) -> None:
    rounds = [0]  # orders go on arriving until the last kill, however fast the projector keeps up
    kills = 0
    produced = threading.Event()

    def producing() -> None:
        while rounds[0] < 6 or kills < 3:
            orders_stream(kafka_settings, f"k{rounds[0]}", 60)
            rounds[0] += 1
        produced.set()

    producer = threading.Thread(target=producing, daemon=True)
    service = started(projector_process(kafka_settings, store_url, logs_dir, "run-0"))
    producer.start()
    try:
        while kills < 3:
            floor = stored_offsets(kafka_settings, store)
            # Killed only once it has stored more since the last start: each kill lands in the middle of work.
            wait_until(lambda f=floor: stored_offsets(kafka_settings, store) > f + 40, 120, interval=0.05,
                       what="the projector to store more")
            service.kill()  # SIGKILL
            kills += 1
            service = started(projector_process(kafka_settings, store_url, logs_dir, f"run-{kills}"))
        producer.join(300)
        assert produced.is_set()
        wait_until(lambda: caught_up(kafka_settings, store), 180, what="the store to catch up after the kills")
        assert service.stop() == 0
    finally:
        service.kill()
    topics = assert_store_matches(kafka_settings, store)
    assert len(topics.orders) == rounds[0] * 60
    assert store.counts()["received"] == rounds[0] * 60
