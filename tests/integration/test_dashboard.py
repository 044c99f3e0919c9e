"""The dashboard against a real broker and the order store its projector (``python -m order_projector``, a
process of its own) keeps: history on start, live updates, a broker that comes late."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from flask.testing import FlaskClient

from dashboard import create_app
from dashboard.app import DashboardApp
from dashboard.settings import Settings
from orderflow.events import (
    AnalyticsSnapshot,
    DayTotals,
    EmailOutcome,
    OrderDetails,
    OrderPlaced,
    OrderVerdict,
    Status,
    Totals,
)
from orderflow.kafka import Record, dead_letter, ensure_topics, make_producer, read_topic
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT
from tests.integration.test_projector import projector_process, started
from tests.support import LocalKafka, ServiceProcess, free_port, operator_client, produce, wait_until

pytestmark = pytest.mark.integration

DAY = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WAIT = 30.0


def placed(order_id: str, price: str, minute: int = 0) -> OrderPlaced:
    when = DAY + timedelta(minutes=minute)
    return OrderPlaced(order_id=order_id, user_id="u-1", user_email="ada@example.com",
                       order_details=OrderDetails(price=Decimal(price)), total=Decimal(price), time=when,
                       occurred_at=when)


def send(kafka: KafkaSettings, records: list[tuple[str, str | None, bytes]], partition: int | None = None) -> None:
    """Write (topic, key, value) records and wait until the broker has them all."""
    producer = make_producer(kafka)
    try:
        for topic, key, value in records:
            producer.send(kafka.topic(topic), key=key.encode() if key else None, value=value, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def events_for(order: OrderPlaced, status: Status, reason: str | None = None,
               email: Literal["sent", "failed"] | None = None) -> list[tuple[str, str | None, bytes]]:
    verdict = OrderVerdict(order_id=order.order_id, status=status, reason=reason, order=order)
    out: list[tuple[str, str | None, bytes]] = [
        (ORDER_DETAILS, order.order_id, order.to_bytes()), (ORDER_CONFIRMED, order.order_id, verdict.to_bytes())]
    if email:
        outcome = EmailOutcome(order_id=order.order_id, status=email, recipient="ada@example.com",
                               message_id=f"<{order.order_id}@test>", attempts=1,
                               error="550 mailbox unavailable" if email == "failed" else None)
        out.append((ORDER_EMAIL_SENT, order.order_id, outcome.to_bytes()))
    return out


def snapshot(partition: int, orders: int, revenue: str, rejected: int = 0) -> tuple[str, str, bytes]:
    snap = AnalyticsSnapshot(scope=f"{ORDER_CONFIRMED}/{partition}", partition=partition, as_of_offset=orders,
                             totals=Totals(orders_count=orders, rejected_count=rejected, revenue=Decimal(revenue),
                                           per_day={DAY.date(): DayTotals(orders=orders, revenue=Decimal(revenue))}))
    return ANALYTICS_RESULT, snap.scope, snap.to_bytes()


class Dashboards:
    """``make(kafka, ...)``: the dashboard over its own order store (an SQLite file unless ``store_url``), with
    the projector filling that store from ``kafka`` (``projector=True``, the default); all stopped at the end."""

    def __init__(self, tmp_path: Path, logs: Path) -> None:
        self.tmp_path, self.logs = tmp_path, logs
        self.apps: list[DashboardApp] = []
        self.projectors: list[ServiceProcess] = []

    def make(self, kafka: KafkaSettings, store_url: str | None = None, projector: bool = True,
             **overrides: Any) -> FlaskClient:
        url = store_url or f"sqlite:///{self.tmp_path / f'store-{len(self.apps)}' / 'orders.sqlite3'}"
        if projector:
            self.start_projector(kafka, url)
        app = create_app(Settings(kafka=kafka, store=StoreSettings(database_url=url),
                                  **{"lag_seconds": 0, "store_poll_ms": 100, **overrides}))
        self.apps.append(app)
        return operator_client(app)

    def start_projector(self, kafka: KafkaSettings, store_url: str) -> None:
        name = f"projector-{len(self.projectors)}"
        self.projectors.append(started(projector_process(kafka, store_url, self.logs, name)))

    def close(self) -> None:
        for app in self.apps:
            app.feed.stop()
            app.store.close()
        codes = {p.name: p.stop() for p in self.projectors}
        assert all(code == 0 for code in codes.values()), {p.name: p.log()[-3000:] for p in self.projectors}


@pytest.fixture
def dashboards(tmp_path: Path, logs_dir: Path) -> Iterator[Dashboards]:
    made = Dashboards(tmp_path, logs_dir)
    yield made
    made.close()


def get_json(client: FlaskClient, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200 and response.json is not None
    return dict(response.json)


def state_when(client: FlaskClient, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        state = get_json(client, "/api/state")
        return state if predicate(state) else None

    return wait_until(ready, WAIT, 0.2, what)  # type: ignore[no-any-return]


def test_history_and_live_events_reach_the_page(kafka_settings: KafkaSettings, dashboards: Dashboards,
                                                store_url: str) -> None:
    emailed, rejected, bounced, waiting = (placed("o-1", "40.00", 1), placed("o-2", "5.00", 2),
                                           placed("o-3", "20.50", 3), placed("o-4", "9.99", 4))
    send(kafka_settings, [
        *events_for(emailed, "confirmed", email="sent"),
        *events_for(rejected, "rejected", reason="card expired"),
        *events_for(bounced, "confirmed", email="failed"),
        (ORDER_DETAILS, waiting.order_id, waiting.to_bytes()),
        (ORDER_DETAILS, "junk", b"{not an event"),  # a dead letter of the projector's, not fatal
        snapshot(0, 1, "10.00"), snapshot(0, 1, "40.00"),  # the later value of a scope wins
        snapshot(1, 1, "20.50", rejected=1),
    ])
    client = dashboards.make(kafka_settings, store_url)
    assert get_json(client, "/healthz")["status"] == "ok"

    state = state_when(client, lambda s: s["counts"]["received"] == 4 and s["totals"]["scopes"] == 2
                       and s["counts"]["emails_failed"] == 1 and s["dead_letters"]["total"] == 1,
                       "the history on the dashboard")
    assert state["counts"] == {"received": 4, "confirmed": 2, "rejected": 1, "emails_sent": 1, "emails_failed": 1}
    assert state["feed"]["connected"] is True and state["feed"]["skipped"] == 0
    assert state["store"]["connected"] is True and state["store"]["ready"] is True
    assert state["dead_letters"]["topics"] == {"order_details.dlq": 1}
    assert get_json(client, "/healthz") | {"streams": None} == {"status": "ok", "kafka": "connected",
                                                                "store": "available", "streams": None}
    assert state["totals"] == {
        "orders": 2, "rejected": 1, "revenue": "60.50", "average_order_value": "30.25",
        "per_day": [{"day": "2025-03-01", "orders": 2, "revenue": "60.50"}], "scopes": 2,
    }
    rows = {row["order_id"]: row for row in state["orders"]}
    assert [row["order_id"] for row in state["orders"]] == ["o-4", "o-3", "o-2", "o-1"]  # newest first
    assert {oid: row["stage"] for oid, row in rows.items()} == {
        "o-1": "emailed", "o-2": "rejected", "o-3": "email_failed", "o-4": "received"}
    assert rows["o-1"]["received_at"] == "2025-03-01T12:01:00+00:00" and rows["o-1"]["total"] == "40.00"
    assert rows["o-1"]["verdict"]["status"] == "confirmed" and rows["o-1"]["email"]["status"] == "sent"
    assert (rows["o-2"]["verdict"]["status"], rows["o-2"]["verdict"]["reason"]) == ("rejected", "card expired")
    assert rows["o-2"]["email"] is None and rows["o-3"]["email"]["error"] == "550 mailbox unavailable"
    assert rows["o-4"]["verdict"] is None and rows["o-4"]["email"] is None

    # Live: what is written after the start shows up too.
    send(kafka_settings, [*events_for(waiting, "confirmed", email="sent"), snapshot(2, 1, "9.99")])
    state = state_when(client, lambda s: s["counts"]["emails_sent"] == 2 and s["totals"]["scopes"] == 3,
                       "the live events on the dashboard")
    assert state["counts"] == {"received": 4, "confirmed": 3, "rejected": 1, "emails_sent": 2, "emails_failed": 1}
    assert state["totals"]["revenue"] == "70.49" and state["totals"]["average_order_value"] == "23.50"
    assert state["orders"][0]["order_id"] == "o-4" and state["orders"][0]["stage"] == "emailed"
    assert get_json(client, "/api/orders/o-2")["verdict"]["reason"] == "card expired"
    found = get_json(client, "/api/search?q=u-1")["orders"]
    assert [o["order_id"] for o in found] == ["o-4", "o-3", "o-2", "o-1"]


def test_the_latest_orders_are_bounded_and_the_counts_are_not(kafka_settings: KafkaSettings,
                                                               dashboards: Dashboards) -> None:
    orders = [placed(f"b-{i:02d}", "1.00", minute=i) for i in range(12)]
    send(kafka_settings, [(ORDER_DETAILS, o.order_id, o.to_bytes()) for o in orders], partition=0)
    client = dashboards.make(kafka_settings, max_orders=5)
    state = state_when(client, lambda s: s["counts"]["received"] == 12, "all twelve orders counted")
    assert [row["order_id"] for row in state["orders"]] == ["b-11", "b-10", "b-09", "b-08", "b-07"]
    assert get_json(client, "/api/orders/b-00")["stage"] == "received"  # not held, still found


@pytest.mark.skipif(shutil.which("java") is None, reason="starts its own broker")
def test_dashboard_waits_for_a_broker_that_starts_late(tmp_path: Path, dashboards: Dashboards) -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="late.", partitions=2)
    store_url = f"sqlite:///{tmp_path / 'late' / 'orders.sqlite3'}"
    client = dashboards.make(kafka, store_url, projector=False)  # the projector needs the broker to start
    assert get_json(client, "/healthz")["kafka"] == "unavailable"
    assert get_json(client, "/api/state")["counts"]["received"] == 0
    wait_until(lambda: get_json(client, "/api/state")["feed"]["error"], WAIT, 0.2, "a failed first attempt")
    assert get_json(client, "/api/state")["store"]["error"]  # no store either, yet

    broker = LocalKafka(tmp_path / "kafka", int(kafka.bootstrap_servers.rsplit(":", 1)[1]), free_port())
    broker.start()
    try:
        ensure_topics(kafka)
        dashboards.start_projector(kafka, store_url)
        order = placed("late-1", "3.00")
        send(kafka, events_for(order, "confirmed", email="sent"))
        state = state_when(client, lambda s: s["counts"]["emails_sent"] == 1, "the order once Kafka is up")
        assert state["feed"]["connected"] is True and state["orders"][0]["order_id"] == "late-1"
        assert get_json(client, "/healthz")["kafka"] == "connected"
        assert get_json(client, "/healthz")["store"] == "available"
    finally:
        dashboards.close()
        dashboards.apps, dashboards.projectors = [], []
        broker.stop()


def test_an_operator_replays_dead_letters_from_the_dead_letter_page(
        kafka_settings: KafkaSettings, dashboards: Dashboards) -> None:
    dead = dead_letter(Record(kafka_settings.topic(ORDER_DETAILS), 1, 7, b"poison-1", b"{not json"), "json_invalid")
    produce(kafka_settings, dead.topic, [("poison-1", dead.value)])
    client = dashboards.make(kafka_settings, projector=False, feed_mode="off")
    page = client.get("/dead-letters")
    assert page.status_code == 200 and "poison-1" in page.text and "{not json" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    done = client.post("/dead-letters/order_details/replay", data={"csrf_token": token.group(1)})
    assert done.status_code == 302
    assert "replayed 1 dead letter(s) into order_details" in client.get("/dead-letters").text
    back = [r for r in read_topic(kafka_settings, kafka_settings.topic(ORDER_DETAILS)) if r.key == b"poison-1"]
    assert [r.value for r in back] == [b"{not json"] and dict(back[0].headers)["replayed_from"] == b"0/0"
