"""orders_backend against a real broker: what is acknowledged is in Kafka; what is refused is not."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orderflow.events import OrderPlaced
from orderflow.kafka import read_topic
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import ORDER_DETAILS
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import free_port, read_models, wait_until

pytestmark = pytest.mark.integration

SEED = {"user_id": 1, "order_id": "seed-1", "user_email": "ada@example.com", "order_details": {"price": 100}}


@pytest.fixture
def client(kafka_settings: KafkaSettings, projected_store: StoreSettings):  # type: ignore[no-untyped-def]
    app = create_app(Settings(kafka=kafka_settings, store=projected_store, max_body_bytes=8192))
    yield app.test_client()
    app.close()


def test_seed_order_is_acknowledged_and_stored(client, kafka_settings: KafkaSettings) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/order", json=SEED)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["order_id"] == "seed-1" and body["user_id"] == "1" and body["total"] == "100.00"
    assert response.headers["Location"] == "/order/seed-1"
    stored = read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
    assert [o.order_id for o in stored] == ["seed-1"]
    assert str(stored[0].total) == "100.00"
    record = next(read_topic(kafka_settings, kafka_settings.topic(ORDER_DETAILS)))
    assert record.key == b"seed-1"


def test_items_order_gets_a_server_made_id(client, kafka_settings: KafkaSettings) -> None:  # type: ignore[no-untyped-def]
    order = {"user_id": "u-7", "user_email": "bo@example.com", "order_details": {
        "items": [{"product": "Oak chair", "quantity": 4, "unit_price": "89.90"},
                  {"product": "Table", "quantity": 1, "unit_price": "449.00"}]}}
    response = client.post("/order", json=order)
    assert response.status_code == 201, response.json
    assert response.json["total"] == "808.60"
    assert len(response.json["order_id"]) == 32
    stored = read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
    assert [o.order_id for o in stored] == [response.json["order_id"]]


BAD_INPUTS = [
    pytest.param(b"{not json", "application/json", 400, None, id="malformed-json"),
    pytest.param(json.dumps(SEED).encode(), "text/plain", 415, None, id="wrong-content-type"),
    pytest.param(b"[]", "application/json", 422, "(body)", id="not-an-object"),
    pytest.param(json.dumps({**SEED, "user_email": "nope"}).encode(), "application/json", 422, "user_email",
                 id="bad-email"),
    pytest.param(json.dumps({k: v for k, v in SEED.items() if k != "user_id"}).encode(), "application/json", 422,
                 "user_id", id="missing-user-id"),
    pytest.param(json.dumps({**SEED, "order_details": {"price": "lots"}}).encode(), "application/json", 422,
                 "order_details.price", id="price-not-a-number"),
    pytest.param(json.dumps({**SEED, "order_details": {"price": -5}}).encode(), "application/json", 422,
                 "order_details.price", id="negative-price"),
    pytest.param(json.dumps({**SEED, "order_details": {"price": 1e12}}).encode(), "application/json", 422,
                 "order_details.price", id="absurd-price"),
    pytest.param(json.dumps({**SEED, "order_details": {"items": [
        {"product": "x", "quantity": "2", "unit_price": 1}]}}).encode(), "application/json", 422,
                 "order_details.items.0.quantity", id="quantity-as-string"),
    pytest.param(json.dumps({**SEED, "surprise": 1}).encode(), "application/json", 422, "surprise",
                 id="unknown-field"),
    pytest.param(json.dumps({**SEED, "user_id": "x" * 9000}).encode(), "application/json", 413, None,
                 id="oversized-body"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "field"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_published(
        client, kafka_settings: KafkaSettings, body: bytes, content_type: str, status: int,  # type: ignore[no-untyped-def]
        field: str | None) -> None:
    response = client.post("/order", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.is_json and response.json["error"]
    if field is not None:
        assert field in [d["field"] for d in response.json["details"]], response.json
    assert list(read_topic(kafka_settings, kafka_settings.topic(ORDER_DETAILS))) == []


def test_unreachable_broker_gives_503_with_retry_after_quickly() -> None:
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
                        publish_timeout_seconds=1.0)
    app = create_app(settings)
    started = time.monotonic()
    response = app.test_client().post("/order", json=SEED)
    took = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "Service Unavailable"
    assert took < 10, f"a 503 should come fast, took {took:.1f}s"
    app.close()


def test_healthz_is_ready_once_kafka_answers(client) -> None:  # type: ignore[no-untyped-def]
    wait_until(lambda: client.get("/healthz").status_code == 200, 30, what="/healthz ready")
    response = client.get("/healthz")
    assert response.json == {"status": "ok", "kafka": "connected"}


def test_healthz_is_unready_without_a_broker() -> None:
    app = create_app(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
                              publish_timeout_seconds=1.0))
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.json["kafka"] == "unavailable" and "cannot be acknowledged" in response.json["message"]
        assert response.headers["Retry-After"] == "5"
    finally:
        app.close()


def test_repeated_post_returns_the_first_order_and_publishes_once(client, kafka_settings: KafkaSettings) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/order", json=SEED)
    again = client.post("/order", json={**SEED, "time": "2020-01-01T00:00:00Z"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    clash = client.post("/order", json={**SEED, "order_details": {"price": 101}})
    assert clash.status_code == 409 and clash.json["order"]["total"] == "100.00"
    stored = read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
    assert [o.order_id for o in stored] == ["seed-1"]


def test_concurrent_posts_of_one_id_publish_it_once(client, kafka_settings: KafkaSettings) -> None:  # type: ignore[no-untyped-def]
    body = {**SEED, "order_id": "race-1"}
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: client.post("/order", json=body).status_code, range(8)))
    assert statuses == [200] * 7 + [201]
    stored = read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
    assert [o.order_id for o in stored] == ["race-1"]


def test_a_repeat_is_recognised_by_another_app_instance(kafka_settings: KafkaSettings,
                                                         projected_store: StoreSettings) -> None:
    """Two gunicorn workers are two processes; two apps here share nothing but Kafka either."""
    apps = [create_app(Settings(kafka=kafka_settings, store=projected_store)) for _ in range(2)]
    try:
        first = apps[0].test_client().post("/order", json={**SEED, "order_id": "w-1"})
        second = apps[1].test_client().post("/order", json={**SEED, "order_id": "w-1"})
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json["event_id"] == first.json["event_id"]
    finally:
        for app in apps:
            app.close()


def test_racing_posts_of_one_id_in_two_workers_answer_one_201(kafka_settings: KafkaSettings,
                                                               projected_store: StoreSettings) -> None:
    """Both workers check, neither finds it, both publish: the first in the log is the order."""
    apps = [create_app(Settings(kafka=kafka_settings, store=projected_store)) for _ in range(2)]
    try:
        for i in range(5):
            barrier = threading.Barrier(2)

            def post(n: int, i: int = i, barrier: threading.Barrier = barrier) -> int:
                client = apps[n].test_client()
                barrier.wait()
                return client.post("/order", json={**SEED, "order_id": f"race-{i}",
                                                   "order_details": {"price": 100 + n}}).status_code

            with ThreadPoolExecutor(2) as pool:
                statuses = sorted(pool.map(post, range(2)))
            assert statuses == [201, 409], f"race-{i}: {statuses}"
    finally:
        for app in apps:
            app.close()
