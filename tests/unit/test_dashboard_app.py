"""dashboard.app with a hand-filled view and no Kafka: routes, page skeleton, assets, lazy feed."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import dashboard
from dashboard import create_app
from dashboard.feed import Feed
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow.events import OrderDetails, OrderPlaced, OrderVerdict
from orderflow.kafka import Follower, KafkaError
from orderflow.settings import KafkaSettings
from tests.support import operator_client

STATIC = Path(dashboard.__file__).parent / "static"
TEMPLATES = Path(dashboard.__file__).parent / "templates"
EVIL = "<img src=x onerror=alert(1)>"


def settings(**overrides: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"), **{"lag_seconds": 0, **overrides})


@pytest.fixture
def view() -> DashboardState:
    order = OrderPlaced(order_id="o-1", user_id="u-1", user_email="ada@example.com",
                        order_details=OrderDetails(price=Decimal("12.30")), total=Decimal("12.30"),
                        time=datetime(2025, 3, 1, tzinfo=UTC))
    state = DashboardState(max_orders=10)
    state.apply_all([order, OrderVerdict(order_id="o-1", status="rejected", reason=EVIL, order=order)])
    return state


@pytest.fixture
def client(view: DashboardState) -> FlaskClient:
    return operator_client(create_app(settings(feed_mode="off", refresh_ms=1500), view=view))


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "kafka": "off", "streams": {"open": 0, "limit": 12}}


def test_api_state_is_the_view_plus_the_feed_status(client: FlaskClient, view: DashboardState) -> None:
    response = client.get("/api/state")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert body["feed"] == {"running": False, "connected": False, "error": None, "applied": 0, "skipped": 0}
    expected = view.to_json()
    for key in ("version", "since", "counts", "totals", "orders", "order_ids", "max_orders", "lag", "dead_letters"):
        assert body[key] == expected[key], key
    assert body["today"]["day"] == datetime.now(UTC).date().isoformat()  # "today" is the server's UTC day
    assert len(body["charts"]["orders_per_second"]["t"]) == 300
    assert body["counts"]["rejected"] == 1 and body["orders"][0]["verdict"]["reason"] == EVIL


def test_page_has_stable_hooks_and_no_user_data(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.text
    for name in ("received", "confirmed", "rejected", "emails-sent", "emails-failed", "revenue", "aov"):
        assert f'id="tile-{name}"' in html and f'data-testid="tile-{name}-value"' in html
    for name in ("today", "dead-letters"):
        assert f'data-testid="tile-{name}-value"' in html
    for hook in ('id="orders-body"', 'id="per-day-body"', 'id="feed-status"', 'data-refresh-ms="1500"',
                 'data-state-url="/api/state"', 'data-stream-url="/api/stream"', 'id="chart-revenue"',
                 'id="chart-rate"', 'id="lag-body"', 'id="dlq-list"', "vendor/uPlot.iife.min.js"):
        assert hook in html
    assert EVIL not in html and "o-1" not in html  # rows come from /api/state, through textContent
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("asset", ["dashboard.js", "dashboard.css", "common.js", "charts.js", "order.js", "shop.js",
                                   "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"])
def test_assets_are_served_locally(client: FlaskClient, asset: str) -> None:
    response = client.get(f"/static/{asset}")
    assert response.status_code == 200 and len(response.data) > 500
    response.close()


ASSETS = sorted(p for p in [*STATIC.rglob("*"), *TEMPLATES.iterdir()] if p.suffix in (".js", ".css", ".html"))
OUR_SCRIPTS = sorted(p for p in STATIC.glob("*.js"))


@pytest.mark.parametrize("path", ASSETS, ids=lambda p: p.name)
def test_no_external_assets(path: Path) -> None:
    assert not re.search(r"(src|href)=[\"']?(https?:)?//|@import|url\(\s*['\"]?(https?:)?//", path.read_text())


@pytest.mark.parametrize("path", [*OUR_SCRIPTS, STATIC / "vendor" / "uPlot.iife.min.js"], ids=lambda p: p.name)
def test_scripts_never_write_markup(path: Path) -> None:
    script = path.read_text()
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", script)
    if path.name in ("common.js", "dashboard.js", "shop.js", "order.js"):  # those that show user data
        assert "textContent" in script or "setText" in script


def test_vendored_chart_library_is_documented() -> None:
    readme = (STATIC / "vendor" / "README.md").read_text()
    assert "uplot@1.6.32" in readme and (STATIC / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT")


@pytest.fixture
def failing_consumers(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    tried = threading.Event()

    def refuse(self: Follower) -> Any:
        tried.set()
        raise KafkaError("no broker here")

    monkeypatch.setattr(Follower, "_make_consumer", refuse)
    yield tried


def test_feed_starts_on_first_request_not_before(failing_consumers: threading.Event) -> None:
    app = create_app(settings(feed_mode="lazy"))
    feed: Feed = app.feed
    assert not feed.running and not failing_consumers.is_set()
    try:
        client = operator_client(app)
        assert client.get("/healthz").json["kafka"] == "unavailable"
        assert feed.running and failing_consumers.wait(5)
        assert client.get("/api/state").status_code == 200  # still answers while Kafka is away
    finally:
        feed.stop()
    assert not feed.running


@pytest.mark.parametrize(("mode", "running"), [("eager", True), ("off", False)])
def test_feed_mode(failing_consumers: threading.Event, mode: str, running: bool) -> None:
    app = create_app(settings(feed_mode=mode))
    feed: Feed = app.feed
    try:
        operator_client(app).get("/")
        assert feed.running is running
    finally:
        feed.stop()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_PORT", "9100")
    monkeypatch.setenv("DASHBOARD_MAX_ORDERS", "50")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "p.")
    loaded = Settings()
    # This machine only by default: the pages show customers' data and ask for no password.
    assert (loaded.port, loaded.max_orders, loaded.host, loaded.kafka.topic_prefix) == (9100, 50, "127.0.0.1", "p.")
    monkeypatch.setenv("DASHBOARD_HOST", "0.0.0.0")
    assert Settings().host == "0.0.0.0"
    assert create_app(loaded).feed.state.max_orders == 50
    assert (loaded.threads, loaded.max_streams, loaded.orders_api_url) == (16, 12, "http://127.0.0.1:5002")
    feed = create_app(loaded).feed
    assert feed.lag is not None and feed.lag.every == 5  # lag is measured unless DASHBOARD_LAG_SECONDS=0
