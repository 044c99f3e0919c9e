"""The whole pipeline as separate processes: gunicorn API, three consumers, real broker, real SMTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT
from tests.support import ServiceProcess, SmtpSink, free_port, read_models, service_env, store_env, wait_until

pytestmark = pytest.mark.e2e


def post(url: str, body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def stack(kafka_settings: KafkaSettings, smtp_sink: SmtpSink, logs_dir: Path) -> Iterator[str]:
    port = free_port()
    env = service_env(kafka_settings, ORDERS_PORT=str(port), ORDERS_HOST="127.0.0.1", ORDERS_WORKERS="2",
                      EMAIL_SMTP_PORT=str(smtp_sink.port), EMAIL_BACKOFF_SECONDS="0.1", **store_env(logs_dir))
    services = [ServiceProcess(m, env, logs_dir).start() for m in (
        "order_projector", "orders_backend", "transactions_backend", "email_backend", "analytics_backend")]
    try:
        wait_until(lambda: _healthy(port), 60, what="orders API /healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        codes = {s.name: s.stop() for s in services}
        logs = {s.name: s.log()[-3000:] for s in services}
    assert all(code == 0 for code in codes.values()), (codes, logs)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_orders_flow_through_every_stage_exactly_once(stack: str, kafka_settings: KafkaSettings,
                                                      smtp_sink: SmtpSink) -> None:
    orders = [{"user_id": 1, "order_id": "seed-1", "user_email": "seed@example.com", "order_details": {"price": 100}},
              {"user_id": "u-1", "order_id": "o-1", "user_email": "a@example.com",  # as the seed's clients send it
               "order_details": {"product": "chair", "quantity": 1, "price": 19.99, "notes": "by the <door>"}}]
    orders += [{"user_id": f"u{i}", "order_id": f"e2e-{i}", "user_email": f"u{i}@example.com",
                "order_details": {"items": [{"product": "Lamp", "quantity": i % 3 + 1, "unit_price": f"{i}.25"}]}}
               for i in range(1, 30)]
    rejected = [{"user_id": "big", "order_id": "too-big", "user_email": "big@example.com",
                 "order_details": {"price": "99999.00"}},
                {"user_id": "card", "order_id": "bad-card", "user_email": "card@example.com",
                 "order_details": {"price": 20}, "payment": {"card_number": "4111111111111112", "expiry": "12/30"}}]
    for body in orders + rejected:
        status, response = post(stack + "/order", body)
        assert status == 201, response
    assert post(stack + "/order", {"user_id": 1})[0] == 422

    everything = {o["order_id"] for o in orders + rejected}
    topic = kafka_settings.topic(ORDER_CONFIRMED)
    wait_until(lambda: {v.order_id for v in read_models(kafka_settings, topic, OrderVerdict)} == everything,
               90, what="a verdict for every order")
    confirmed = {o["order_id"] for o in orders}
    wait_until(lambda: len(smtp_sink.received()) >= len(confirmed), 90, what="one email per confirmed order")
    expected_revenue = Decimal("100.00") + Decimal("19.99") + sum(
        (Decimal(f"{i}.25") * (i % 3 + 1) for i in range(1, 30)), Decimal("0"))

    def totals():  # type: ignore[no-untyped-def]
        latest = {s.scope: s for s in read_models(kafka_settings, kafka_settings.topic(ANALYTICS_RESULT),
                                                   AnalyticsSnapshot)}
        return merge(latest.values())

    wait_until(lambda: totals().orders_count + totals().rejected_count == len(everything), 90,
               what="every verdict counted")

    verdicts = read_models(kafka_settings, topic, OrderVerdict)
    assert len(verdicts) == len(everything)
    assert {v.order_id for v in verdicts if v.status == "rejected"} == {"too-big", "bad-card"}
    mails = smtp_sink.received()
    assert sorted(m["X-Order-Id"] for m in mails) == sorted(confirmed)
    assert next(m for m in mails if m["X-Order-Id"] == "seed-1")["To"] == "seed@example.com"
    outcomes = read_models(kafka_settings, kafka_settings.topic(ORDER_EMAIL_SENT), EmailOutcome)
    assert sorted(o.order_id for o in outcomes) == sorted(confirmed)
    final = totals()
    assert final.orders_count == len(confirmed) and final.rejected_count == 2
    assert final.revenue == expected_revenue

    # The seed-shaped order's own fields, unchanged in every topic and in its email.
    extras = {"product": "chair", "quantity": 1, "notes": "by the <door>"}
    [placed] = [o for o in read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
                if o.order_id == "o-1"]
    [verdict] = [v for v in verdicts if v.order_id == "o-1"]
    [outcome] = [o for o in outcomes if o.order_id == "o-1"]
    assert outcome.order_details is not None
    assert placed.order_details.extras == verdict.order.order_details.extras == outcome.order_details.extras == extras
    assert placed.total == Decimal("19.99")
    mail = next(m for m in mails if m["X-Order-Id"] == "o-1").get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "  product: chair\n" in mail and "  notes: by the <door>\n" in mail and "Total: 19.99 USD" in mail
