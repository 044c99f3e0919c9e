"""GET /order/<id> against a real broker: the order and its status across the topics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import ORDER_CONFIRMED, ORDER_EMAIL_SENT
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import produce

pytestmark = pytest.mark.integration


def order(order_id: str) -> dict[str, object]:
    return {"user_id": 7, "order_id": order_id, "user_email": "ada@example.com", "order_details": {"price": "25.00"}}


@pytest.fixture
def client(kafka_settings: KafkaSettings, projected_store: StoreSettings) -> Iterator[FlaskClient]:
    app = create_app(Settings(kafka=kafka_settings, store=projected_store))
    yield app.test_client()
    app.close()


def later(seconds: float, action) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def verdict_of(placed: dict[str, object], status: str, reason: str | None = None) -> bytes:
    placed_order = OrderPlaced.model_validate(placed)
    return OrderVerdict(order_id=placed_order.order_id, status=status, reason=reason,  # type: ignore[arg-type]
                        order=placed_order).to_bytes()


def test_a_posted_order_is_received(client: FlaskClient) -> None:
    placed = client.post("/order", json=order("look-1")).json
    response = client.get("/order/look-1")
    assert response.status_code == 200, response.json
    public = {k: v for k, v in placed.items() if k not in ("user_email", "payment")}  # no key: the public view
    assert response.json == {"order": public, "status": "received", "reason": None, "email": None}


def test_an_unknown_order_is_404_json(client: FlaskClient) -> None:
    response = client.get("/order/nobody-ordered-this")
    assert response.status_code == 404
    assert response.json["error"] == "Not Found" and "nobody-ordered-this" in response.json["message"]


def test_wait_follows_the_order_to_its_email(client: FlaskClient, kafka_settings: KafkaSettings) -> None:
    placed = client.post("/order", json=order("look-2")).json

    def decide_and_email() -> None:
        produce(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED), [("look-2", verdict_of(placed, "confirmed"))])
        time.sleep(0.5)
        email = EmailOutcome(order_id="look-2", status="sent", recipient="ada@example.com", message_id="<m@shop>",
                             attempts=1)
        produce(kafka_settings, kafka_settings.topic(ORDER_EMAIL_SENT), [("look-2", email.to_bytes())])

    assert client.get("/order/look-2?until=emailed").json["status"] == "received", "no wait: the state now"
    worker = later(1.0, decide_and_email)
    started = time.monotonic()
    response = client.get("/order/look-2?wait=10&until=emailed")
    took = time.monotonic() - started
    worker.join()
    assert response.status_code == 200
    assert response.json["status"] == "confirmed" and response.json["email"]["status"] == "sent"
    # Waited for the email, and answered before the wait's 10 s ran out (a loaded machine has all but those).
    assert 1.0 <= took < 10, f"answers once the email is recorded, took {took:.1f}s"


def test_wait_for_a_just_posted_order(client: FlaskClient) -> None:
    worker = later(1.0, lambda: client.application.test_client().post("/order", json=order("look-3")))
    response = client.get("/order/look-3?wait=8")
    worker.join()
    assert response.status_code == 200 and response.json["order"]["order_id"] == "look-3"


def test_a_rejection_is_shown_with_its_reason(client: FlaskClient, kafka_settings: KafkaSettings) -> None:
    placed = client.post("/order", json=order("look-4")).json
    produce(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED),
            [("look-4", verdict_of(placed, "rejected", "order total over the limit"))])
    started = time.monotonic()
    response = client.get("/order/look-4?wait=10&until=emailed")  # a rejected order gets no email: no waiting
    assert time.monotonic() - started < 10  # did not sit out the wait
    assert (response.json["status"], response.json["reason"]) == ("rejected", "order total over the limit")
    assert response.json["email"] is None


def test_a_wait_times_out_with_the_state_reached(client: FlaskClient) -> None:
    client.post("/order", json=order("look-5"))
    started = time.monotonic()
    response = client.get("/order/look-5?wait=1.5&until=decided")
    assert 1.5 <= time.monotonic() - started < 20
    assert response.status_code == 200 and response.json["status"] == "received"


@pytest.mark.parametrize("query", ["wait=11", "wait=-1", "wait=soon", "until=shipped", "surprise=1"])
def test_a_bad_query_is_422(client: FlaskClient, query: str) -> None:
    response = client.get(f"/order/look-6?{query}")
    assert response.status_code == 422 and response.json["details"], response.json
