"""dashboard.app with a hand-filled view, no Kafka and no order store: routes, page skeleton, assets, lazy feed."""

from __future__ import annotations

import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import dashboard
from dashboard import create_app
from dashboard.feed import Feed
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow.kafka import Follower, KafkaError
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from tests.support import operator_client, wait_until
from tests.unit.test_dashboard_view import Book, placed, shown, verdict

STATIC = Path(dashboard.__file__).parent / "static"
TEMPLATES = Path(dashboard.__file__).parent / "templates"
EVIL = "<img src=x onerror=alert(1)>"


def no_store() -> StoreSettings:
    """A store that is not there (the dashboard opens it read-only, so it never makes one)."""
    return StoreSettings(database_url=f"sqlite:///{tempfile.gettempdir()}/no-store-{uuid.uuid4().hex}/orders.sqlite3")


def settings(**overrides: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
                    **{"lag_seconds": 0, "store": no_store(), **overrides})


@pytest.fixture
def view() -> DashboardState:
    order = placed("o-1", price="12.30", user_id="u-1")
    state = DashboardState(max_orders=10)
    shown(state, Book(), order, verdict(order, "rejected", EVIL))
    return state


@pytest.fixture
def client(view: DashboardState) -> FlaskClient:
    return operator_client(create_app(settings(feed_mode="off", refresh_ms=1500), view=view))


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "kafka": "off", "store": "off", "streams": {"open": 0, "limit": 12}}


def test_api_state_is_the_view_plus_the_feed_status(client: FlaskClient, view: DashboardState) -> None:
    response = client.get("/api/state")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert body["feed"] == {"running": False, "connected": False, "error": None, "applied": 0, "skipped": 0}
    assert body["store"] == {"running": False, "connected": False, "ready": False, "error": None, "rows_read": 0,
                             "loads": 0}
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
    assert not feed.running and not failing_consumers.is_set() and feed.orders is not None
    assert not feed.orders.running
    try:
        client = operator_client(app)
        assert client.get("/healthz").json["kafka"] == "unavailable"
        assert feed.running and failing_consumers.wait(5) and feed.orders.running
        wait_until(lambda: feed.orders.last_error, 5, 0.05, "the store's reader to fail")  # type: ignore[union-attr]
        state = client.get("/api/state")  # still answers while Kafka and the store are away
        assert state.status_code == 200 and state.json["store"]["connected"] is False
        assert "unable to open database file" in state.json["store"]["error"]
        assert client.get("/healthz").json["store"] == "unavailable"
    finally:
        feed.stop()
    assert not feed.running and not feed.orders.running


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
    monkeypatch.setenv("STORE_DATABASE_URL", "sqlite:////tmp/elsewhere/orders.sqlite3")
    loaded = Settings()
    assert loaded.store.database_url == "sqlite:////tmp/elsewhere/orders.sqlite3" and loaded.store_poll_ms == 300
    # This machine only by default: the pages show customers' data and ask for no password.
    assert (loaded.port, loaded.max_orders, loaded.host, loaded.kafka.topic_prefix) == (9100, 50, "127.0.0.1", "p.")
    monkeypatch.setenv("DASHBOARD_HOST", "0.0.0.0")
    assert Settings().host == "0.0.0.0"
    assert create_app(loaded).feed.state.max_orders == 50
    assert (loaded.threads, loaded.max_streams, loaded.orders_api_url) == (16, 12, "http://127.0.0.1:5002")
    feed = create_app(loaded).feed
    assert feed.lag is not None and feed.lag.every == 5  # lag is measured unless DASHBOARD_LAG_SECONDS=0
