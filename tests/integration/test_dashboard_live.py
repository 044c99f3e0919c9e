"""The dashboard's looks at the cluster against a real broker: consumer lag, dead letters, the topic view."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from dashboard import create_app
from dashboard.feed import Feed
from dashboard.settings import Settings
from orderflow.kafka import OffsetAndMetadata, TopicPartition, group_lag, make_consumer, peek_topics
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import (
    ANALYTICS_GROUP,
    EMAIL_GROUP,
    ORDER_CONFIRMED,
    ORDER_DETAILS,
    TRANSACTIONS_GROUP,
    pipeline_topics,
)
from tests.integration.test_dashboard import events_for, placed, send, snapshot, state_when
from tests.support import operator_client

pytestmark = pytest.mark.integration


@pytest.fixture
def dashboard_client(tmp_path: Path) -> Iterator[Callable[..., FlaskClient]]:
    """Dashboards whose order store is not there (no projector): what is looked at here is Kafka's."""
    feeds: list[Feed] = []

    def make(kafka: KafkaSettings, **overrides: Any) -> FlaskClient:
        store = StoreSettings(database_url=f"sqlite:///{tmp_path / 'no-store' / 'orders.sqlite3'}")
        app = create_app(Settings(kafka=kafka, store=store, **overrides))
        feeds.append(app.feed)
        return operator_client(app)

    yield make
    for feed in feeds:
        feed.stop()


def commit(kafka: KafkaSettings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` for a consumer group, as a stage would after processing."""
    consumer = make_consumer(kafka, group_id=kafka.group(group))
    try:
        consumer.commit({TopicPartition(kafka.topic(topic), p): OffsetAndMetadata(o, "", -1)
                         for p, o in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def test_group_lag_is_end_offsets_minus_committed(kafka_settings: KafkaSettings) -> None:
    send(kafka_settings, [(ORDER_DETAILS, f"o{i}", placed(f"o{i}", "1.00").to_bytes()) for i in range(4)], partition=0)
    send(kafka_settings, [(ORDER_DETAILS, f"p{i}", placed(f"p{i}", "1.00").to_bytes()) for i in range(3)], partition=2)
    assert group_lag(kafka_settings, TRANSACTIONS_GROUP, ORDER_DETAILS) == {0: 4, 1: 0, 2: 3}  # never committed
    commit(kafka_settings, TRANSACTIONS_GROUP, ORDER_DETAILS, {0: 3, 2: 3})
    assert group_lag(kafka_settings, TRANSACTIONS_GROUP, ORDER_DETAILS) == {0: 1, 1: 0, 2: 0}
    assert group_lag(kafka_settings, TRANSACTIONS_GROUP, "no_such_topic") == {}


def test_peek_shows_offsets_and_the_newest_records(kafka_settings: KafkaSettings) -> None:
    orders = [placed(f"o{i}", "1.00", minute=i) for i in range(8)]
    send(kafka_settings, [(ORDER_DETAILS, o.order_id, o.to_bytes()) for o in orders], partition=1)
    [details, missing] = peek_topics(kafka_settings, [kafka_settings.topic(ORDER_DETAILS), "absent"], last=3)
    assert details.offsets == {0: (0, 0), 1: (0, 8), 2: (0, 0)} and missing.offsets == {}
    assert [json.loads(r.value or b"")["order_id"] for r in details.records] == ["o7", "o6", "o5"]
    assert missing.records == []


def test_lag_and_dead_letters_reach_the_dashboard(kafka_settings: KafkaSettings,
                                                  dashboard_client: Callable[..., FlaskClient]) -> None:
    order = placed("o-1", "8.00")
    send(kafka_settings, [*events_for(order, "confirmed", email="sent"), snapshot(0, 1, "8.00")])
    send(kafka_settings, [("order_details.dlq", "bad", b"\xff") for _ in range(3)])
    commit(kafka_settings, EMAIL_GROUP, ORDER_CONFIRMED, dict.fromkeys(range(3), 0))
    client = dashboard_client(kafka_settings, lag_seconds=0.2)

    def measured(state: dict[str, Any]) -> bool:
        lag, dead = state["lag"], state["dead_letters"]
        return len(lag) == 3 and all(v["total"] is not None for v in lag.values()) and dead["total"] == 3

    state = state_when(client, measured, "lag of three services and three dead letters")
    lag = state["lag"]
    assert {s: (v["topic"], v["total"]) for s, v in lag.items()} == {TRANSACTIONS_GROUP: (ORDER_DETAILS, 1),
                                                                   EMAIL_GROUP: (ORDER_CONFIRMED, 1),
                                                                   ANALYTICS_GROUP: (ORDER_CONFIRMED, 1)}
    assert state["dead_letters"]["topics"] == {"order_details.dlq": 3}
    assert state["dead_letters"]["recent"][0]["source"] == "?[?]@?"  # no origin headers on these

    commit(kafka_settings, EMAIL_GROUP, ORDER_CONFIRMED, group_offsets_at_end(kafka_settings, ORDER_CONFIRMED))
    state_when(client, lambda s: s["lag"][EMAIL_GROUP]["total"] == 0, "the email group caught up")


def group_offsets_at_end(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = make_consumer(kafka, group_id=None)
    try:
        tps = [TopicPartition(kafka.topic(topic), p) for p in range(kafka.partitions)]
        return {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def test_topic_page_reads_the_cluster(kafka_settings: KafkaSettings,
                                      dashboard_client: Callable[..., FlaskClient]) -> None:
    order = placed("x-1", "2.00").model_copy(update={"user_id": "u<b>"})
    send(kafka_settings, [(ORDER_DETAILS, order.order_id, order.to_bytes())])
    response = dashboard_client(kafka_settings, feed_mode="off").get("/topics")
    assert response.status_code == 200
    html = response.text
    assert html.count('data-testid="topic"') == len(pipeline_topics(1)) and "Not found in the cluster." not in html
    assert "&#34;order_id&#34;: &#34;x-1&#34;" in html and "u&lt;b&gt;" in html and "u<b>" not in html
