"""The orders API for browsers and scrapers: CORS by setting, /metrics; and the dashboard's /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from dashboard.app import create_app as create_dashboard
from dashboard.settings import Settings as DashboardSettings
from orderflow.settings import KafkaSettings
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import free_port

SHOP = "http://shop.example:8000"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"}


@pytest.fixture
def make_client() -> Iterator:  # type: ignore[type-arg]
    apps = []

    def make(**settings: str) -> FlaskClient:
        app = create_app(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"), **settings))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.close()


def test_preflight_from_an_allowed_origin_may_post_json(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(cors_origins=f"https://other.example, {SHOP}")
    response = client.options("/order", headers={"Origin": SHOP, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"


def test_answers_to_an_allowed_origin_expose_location_and_retry_after(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(cors_origins=SHOP)
    response = client.post("/order", data=b"{nope", content_type="application/json", headers={"Origin": SHOP})
    assert response.status_code == 400 and response.json["error"] == "Malformed JSON"
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Retry-After"} <= exposed


def test_other_origins_get_no_cors_headers(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(cors_origins=SHOP)
    response = client.options("/order", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_is_off_by_default(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    response = client.options("/order", headers={"Origin": SHOP, **PREFLIGHT})
    assert not [name for name, _ in response.headers if name.startswith("Access-Control-")]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_orders_metrics_count_refused_orders_by_outcome(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(publish_timeout_seconds="1")  # no broker there: a valid order gets 503 quickly
    before = samples(client.get("/metrics").get_data(as_text=True))
    for outcome in ("created", "duplicate", "conflict", "invalid", "unavailable"):
        assert ("orders_received_total", (("outcome", outcome),)) in before, outcome
    assert client.post("/order", data=b"{nope", content_type="application/json").status_code == 400
    assert client.post("/order", data=b"{}", content_type="text/plain").status_code == 415
    assert client.post("/order", json={"user_id": 1}).status_code == 422
    order = {"user_id": 1, "user_email": "ada@example.com", "order_details": {"price": 100}}
    assert client.post("/order", json=order).status_code == 503
    response = client.get("/metrics")
    assert response.mimetype == "text/plain"
    after = samples(response.get_data(as_text=True))

    def delta(outcome: str) -> float:
        key = ("orders_received_total", (("outcome", outcome),))
        return after[key] - before[key]

    assert [delta(o) for o in ("invalid", "unavailable", "created", "duplicate")] == [3, 1, 0, 0]
    assert after[("orders_published_total", ())] == before[("orders_published_total", ())]


def test_dashboard_serves_metrics() -> None:
    app = create_dashboard(DashboardSettings(feed_mode="off"))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    names = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    assert "process_cpu_seconds" in names or "python_info" in names
