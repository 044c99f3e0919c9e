"""The order, history, topic and shop pages with no Kafka: escaping, 404s, 503s, paging, read-only.

The order pages read an order store: an SQLite file written here as the projector writes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError

from dashboard import create_app, order_pages, pages
from dashboard.catalogue import CATALOGUE
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow.events import OrderPlaced
from orderflow.kafka import KafkaError, Record, TopicPeek
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from tests.storefill import StoreFiller
from tests.support import operator_client
from tests.unit.test_dashboard_view import email, placed, verdict

EVIL = "<script>alert(1)</script>"
API = "http://127.0.0.1:5999"


def settings(store_url: str = "sqlite:////nonexistent/orders.sqlite3", **overrides: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="p."), feed_mode="off",
                    lag_seconds=0, orders_api_url=API + "/", store=StoreSettings(database_url=store_url), **overrides)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.sqlite3'}"


@pytest.fixture
def filler(store_url: str) -> Iterator[StoreFiller]:
    with StoreFiller(store_url) as filler:
        yield filler


@pytest.fixture
def client(store_url: str, filler: StoreFiller) -> FlaskClient:
    order = placed("o-1", price="12.30")
    filler.write(order, verdict(order, "rejected", reason=EVIL, after=2), placed("o-2"),
                 verdict(placed("o-2")), email(placed("o-2"), "failed", error=EVIL))
    return operator_client(create_app(settings(store_url), view=DashboardState()))


def test_order_page_shows_the_timeline_escaped(client: FlaskClient) -> None:
    response = client.get("/orders/o-1")
    assert response.status_code == 200
    html = response.text
    assert 'data-step="received"' in html and 'data-step="rejected"' in html and 'data-step="emailed"' not in html
    assert "+2.0 s" in html  # the time the verdict took
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    failed = client.get("/orders/o-2").text
    assert 'data-step="email_failed"' in failed and EVIL not in failed and 'id="order-stage"' in failed


def test_unknown_order_is_a_404_page_that_keeps_looking(client: FlaskClient, filler: StoreFiller) -> None:
    markup = "x<img src=x onerror=alert(1)>"
    response = client.get(f"/orders/{markup}")
    assert response.status_code == 404 and "has no order" in response.text
    assert markup not in response.text and "x&lt;img src=x onerror=alert(1)&gt;" in response.text  # escaped too
    assert client.get("/api/orders/nope").status_code == 404
    filler.write(email(placed("early"), "sent"))  # its email read before the order: not an order yet
    assert client.get("/orders/early").status_code == 404 and client.get("/api/orders/early").status_code == 404


def test_api_order_is_the_stored_order(client: FlaskClient) -> None:
    response = client.get("/api/orders/o-1")
    body = response.json
    assert body is not None and body["stage"] == "rejected" and body["verdict"]["reason"] == EVIL
    assert body["total"] == "12.30" and body["user_email"] == "ada@example.com"
    assert response.headers["Cache-Control"] == "no-store"


def test_order_pages_answer_503_while_the_store_cannot_be_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later' / 'orders.sqlite3'}"
    client = operator_client(create_app(settings(url)))
    for path in ("/orders/o-1", "/history", "/history?q=o-1"):
        response = client.get(path)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5", path
        assert "store unavailable" in response.text, path
    for path in ("/api/orders/o-1", "/api/history", "/api/search?q=o-1"):
        response = client.get(path)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5", path
        assert "store unavailable" in response.json["message"], path
    assert not (tmp_path / "later").exists()  # read-only: the dashboard made no database in its place
    with StoreFiller(url) as filler:  # the projector came: the same app answers, nothing to restart
        filler.write(placed("o-1"))
    assert client.get("/orders/o-1").status_code == 200 and client.get("/api/history").status_code == 200


def ids(html: str) -> list[str]:
    return re.findall(r'<tr data-order-id="([^"]+)"', html)


def older_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next"', html)
    return None if found is None else found.group(1).replace("&amp;", "&")


def test_history_pages_newest_first_by_cursor(filler: StoreFiller, store_url: str) -> None:
    orders = [placed(f"h-{i:03d}", minute=i) for i in range(order_pages.HISTORY_PAGE + 7)]
    filler.write(*orders)
    client = operator_client(create_app(settings(store_url)))
    first = client.get("/history")
    assert first.status_code == 200
    assert ids(first.text) == [o.order_id for o in reversed(orders)][:order_pages.HISTORY_PAGE]
    link = older_link(first.text)
    assert link is not None and link.startswith("/history?before=")
    second = client.get(link)
    assert ids(second.text) == [f"h-{i:03d}" for i in range(6, -1, -1)] and older_link(second.text) is None
    assert 'data-testid="newest"' in second.text
    body = client.get("/api/history?limit=5").json
    assert [o["order_id"] for o in body["orders"]] == [f"h-{i:03d}" for i in range(56, 51, -1)]
    assert body["next"] == order_pages.cursor_text((orders[52].time, "h-052"))
    again = client.get(body["next_url"]).json
    assert [o["order_id"] for o in again["orders"]] == [f"h-{i:03d}" for i in range(51, 46, -1)]


@pytest.mark.parametrize("term", ["s-2", "u-search", "shopper@example.com"])
def test_search_finds_by_order_id_customer_id_or_email(filler: StoreFiller, store_url: str, term: str) -> None:
    def order(order_id: str, user_id: str, address: str, minute: int) -> OrderPlaced:
        return placed(order_id, minute=minute, user_id=user_id).model_copy(update={"user_email": address})

    filler.write(order("s-1", "u-other", "other@example.com", 1), order("s-2", "u-search", "shopper@example.com", 2),
                 order("s-3", "u-search", "shopper@example.com", 3), order("s-4", "u-else", "else@example.com", 4))
    expected = {"s-2": ["s-2"], "u-search": ["s-3", "s-2"], "shopper@example.com": ["s-3", "s-2"]}[term]
    client = operator_client(create_app(settings(store_url)))
    page = client.get("/history", query_string={"q": f" {term} "})
    assert page.status_code == 200 and ids(page.text) == expected and 'rel="next"' not in page.text
    assert client.get("/api/search", query_string={"q": term}).json["orders"][0]["order_id"] == expected[0]
    assert "No order has" in client.get("/history?q=S-2").text  # exact: case as written


def test_history_and_search_show_user_text_as_text(filler: StoreFiller, store_url: str) -> None:
    order = placed("x-1").model_copy(update={"order_details": placed("x-1").order_details.model_copy(
        update={"extras": {"product": EVIL, "notes": EVIL}})})
    filler.write(order, verdict(order, "rejected", EVIL))
    client = operator_client(create_app(settings(store_url)))
    for path in ("/history", "/history?q=x-1", f"/history?q={EVIL}"):
        html = client.get(path).text
        assert EVIL not in html and "<script>" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/history").text


@pytest.mark.parametrize("before", ["yesterday|o-1", "2025-03-01T12:00:00|o-1", "2025-03-01T12:00:00Z", "|o-1",
                                    "2025-03-01T12:00:00Z|" + "x" * 300])
def test_a_cursor_not_made_here_is_a_400(filler: StoreFiller, store_url: str, before: str) -> None:
    client = operator_client(create_app(settings(store_url)))
    page = client.get("/history", query_string={"before": before})
    assert page.status_code == 400 and "not one this page made" in page.text
    assert client.get("/api/history", query_string={"before": before}).status_code == 400


def test_cursors_read_back_as_written() -> None:
    at = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert order_pages.cursor_text((at, "o-1")) == "2025-03-01T12:00:00.250000Z|o-1"
    assert order_pages.parse_cursor("2025-03-01T12:00:00.250000Z|o-1") == (at, "o-1")
    assert order_pages.parse_cursor("2025-03-01T13:00:00.250000+01:00|o-1") == (at, "o-1")


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "limit=-1"])
def test_json_limits_are_bounded(filler: StoreFiller, store_url: str, query: str) -> None:
    client = operator_client(create_app(settings(store_url)))
    assert client.get(f"/api/history?{query}").status_code == 400
    assert client.get(f"/api/search?q=o-1&{query}").status_code == 400
    assert client.get("/api/search").status_code == 400  # a term is needed


def test_shop_page_lists_the_catalogue_and_posts_to_the_orders_api() -> None:
    response = create_app(settings()).test_client().get("/shop")  # open to customers: no login
    assert response.status_code == 200
    html = response.text
    for product in CATALOGUE:
        assert f'data-product="{product.name}"' in html and f'data-price="{product.price}"' in html
    assert f'data-orders-api="{API}"' in html  # the trailing slash of the setting is gone
    assert "<form" in html and "action=" not in html and "novalidate" in html  # fetch() to the API, not a post here
    assert f"connect-src 'self' {API}" in response.headers["Content-Security-Policy"]


def test_the_dashboard_changes_nothing_but_through_its_operator_actions() -> None:
    app = create_app(settings())
    posts = {rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())}
    assert posts == {"/login", "/logout", "/dead-letters/<source>/replay"}
    methods = {method for rule in app.url_map.iter_rules() for method in rule.methods or ()}
    assert methods <= {"GET", "HEAD", "OPTIONS", "POST"}
    assert {"/", "/api/state", "/api/stream", "/orders/<order_id>", "/history", "/api/history", "/api/search",
            "/topics", "/shop"} <= {rule.rule for rule in app.url_map.iter_rules()}


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://x'; script-src *", "ftp://host", "http://"])
def test_orders_api_url_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(orders_api_url=url)


def test_streams_always_leave_threads_for_pages() -> None:
    assert Settings(threads=6).max_streams == 2 and Settings(threads=2).max_streams == 1
    with pytest.raises(ValidationError):
        Settings(threads=4, max_streams=4)


@pytest.mark.parametrize(("raw", "kind", "text"), [
    (b'{"a": [1, "<b>"]}', "json", '{\n  "a": [\n    1,\n    "<b>"\n  ]\n}'),
    (b"plain <i>text</i>", "text", "plain <i>text</i>"),
    (b"\xff\x00", "bytes", "ff 00"),
    (None, "null", "(no value: a tombstone)"),
])
def test_values_are_shown_as_pretty_json_text_or_hex(raw: bytes | None, kind: str, text: str) -> None:
    assert pages.shown_value(raw) == (kind, text)


def test_long_values_are_cut() -> None:
    kind, text = pages.shown_value(json.dumps("x" * 10_000).encode())
    assert kind == "json" and len(text) == pages.VALUE_CHARS + 2 and text.endswith(" …")


def test_topics_page_lists_every_topic_with_escaped_records(client: FlaskClient,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    record = Record("p.order_details", 1, 41, b"o-1", json.dumps({"product": EVIL}).encode(),
                    (("error", b"<b>bad</b>"),), 1_740_000_000_000)

    def peek(kafka: KafkaSettings, names: list[str], last: int) -> list[TopicPeek]:
        asked.append(list(names))
        return [TopicPeek(name, {0: (0, 0), 1: (3, 42)} if name == "p.order_details" else {},
                          [record] if name == "p.order_details" else []) for name in names]

    monkeypatch.setattr(pages, "peek_topics", peek)
    response = client.get("/topics")
    assert response.status_code == 200
    assert asked == [["p.order_details", "p.order_confirmed", "p.order_email_sent", "p.email_sent_log",
                      "p.analytics_result", "p.order_details.dlq", "p.order_confirmed.dlq",
                      "p.order_email_sent.dlq"]]
    html = response.text
    assert html.count('data-testid="topic"') == 8 and "Not found in the cluster." in html
    assert "1@41" in html and "2025-02-19T21:20:00+00:00" in html
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in html and "<b>bad</b>" not in html
    assert '<td class="num">3</td>' in html and '<td class="num">42</td>' in html  # first and end offsets


def test_topics_page_says_when_kafka_cannot_be_read(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_: object, **__: object) -> list[TopicPeek]:
        raise KafkaError("NoBrokersAvailable")

    monkeypatch.setattr(pages, "peek_topics", down)
    response = client.get("/topics")
    assert response.status_code == 503 and "Kafka could not be read" in response.text


def test_topics_are_read_from_kafka_at_most_every_few_seconds(client: FlaskClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[float] = []
    now = [1000.0]

    def peek(kafka: KafkaSettings, names: list[str], last: int) -> list[TopicPeek]:
        reads.append(now[0])
        if len(reads) == 1:
            raise KafkaError("NoBrokersAvailable")
        return [TopicPeek(name, {}, []) for name in names]

    monkeypatch.setattr(pages, "peek_topics", peek)
    monkeypatch.setattr(pages, "time", SimpleNamespace(monotonic=lambda: now[0]))  # this module's clock only
    assert [client.get("/topics").status_code for _ in range(3)] == [503] * 3  # a failure is kept too
    now[0] += pages.TOPICS_CACHE_SECONDS
    assert [client.get("/topics").status_code for _ in range(3)] == [200] * 3
    assert reads == [1000.0, 1000.0 + pages.TOPICS_CACHE_SECONDS]
