"""Customer data only for its owner, keys when configured, limits per client (real broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from orderflow.events import EmailOutcome
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import ORDER_EMAIL_SENT
from orders_backend.access import key_hash, new_key
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import produce

pytestmark = pytest.mark.integration

PERSONAL = ("ada@example.com", "1111", "12/35")  # the address, the card's last digits, its expiry


def order(order_id: str, user_id: str = "u-1", price: str = "25.00") -> dict[str, Any]:
    return {"user_id": user_id, "order_id": order_id, "user_email": "ada@example.com",
            "order_details": {"price": price}, "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/35"}}


def shows_personal_data(body: Any) -> list[str]:
    text = json.dumps(body)
    return [item for item in PERSONAL if item in text]


@pytest.fixture
def make_client(kafka_settings: KafkaSettings, projected_store: StoreSettings) -> Iterator[Any]:
    apps = []

    def make(**settings: Any) -> FlaskClient:
        app = create_app(Settings(kafka=kafka_settings, store=projected_store, **settings))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.close()


def test_strangers_see_status_and_totals_never_the_customers_data(make_client: Any,
                                                                  kafka_settings: KafkaSettings) -> None:
    client = make_client()
    placed = client.post("/order", json=order("pii-1"))
    assert placed.status_code == 201 and shows_personal_data(placed.json), "the poster gets its own order back"
    produce(kafka_settings, kafka_settings.topic(ORDER_EMAIL_SENT), [("pii-1", EmailOutcome(
        order_id="pii-1", status="failed", recipient="ada@example.com", message_id="<m@x>", attempts=1,
        error="550 ada@example.com unknown").to_bytes())])
    seen = client.get("/order/pii-1?wait=5&until=emailed")
    assert seen.status_code == 200 and seen.json["order"]["total"] == "25.00" and seen.json["email"]["status"]
    assert shows_personal_data(seen.json) == []
    clash = client.post("/order", json=order("pii-1", price="26.00"))
    assert clash.status_code == 409 and clash.json["order"]["order_id"] == "pii-1"
    assert shows_personal_data(clash.json) == []


def test_with_keys_a_customer_reads_only_its_own_orders(make_client: Any) -> None:
    ada, bob = new_key(), new_key()
    client = make_client(api_keys=f"u-1={key_hash(ada)},u-2={key_hash(bob)}")
    as_ada = {"Authorization": f"Bearer {ada}"}
    assert client.post("/order", json=order("key-1")).status_code == 401
    wrong = client.post("/order", json=order("key-1"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/order", json=order("key-1", user_id="u-2"), headers=as_ada).status_code == 403
    assert client.post("/order", json=order("key-1"), headers=as_ada).status_code == 201
    own = client.get("/order/key-1?wait=5", headers={"X-API-Key": ada})
    assert own.status_code == 200 and own.json["order"]["user_email"] == "ada@example.com"
    assert client.get("/order/key-1").status_code == 401
    assert client.get("/order/key-1", headers={"Authorization": f"Bearer {bob}"}).status_code == 404
    assert client.get("/order/key-1", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_client_over_its_limit_gets_429_with_retry_after(make_client: Any) -> None:
    client = make_client(rate_limit="3/minute")
    statuses = [client.post("/order", json=order(f"burst-{i}")).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = client.post("/order", json=order("burst-5"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json["error"] == "Too Many Requests" and "3 per 1 minute" in refused.json["message"]
    other = client.post("/order", json=order("burst-6"), environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 201, "the limit is per client"


def test_the_api_sends_its_security_headers(make_client: Any) -> None:
    response = make_client().get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
