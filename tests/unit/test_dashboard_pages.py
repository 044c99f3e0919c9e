"""The order, topic and shop pages, with a hand-filled view and no Kafka: escaping, 404s, read-only."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError

from dashboard import create_app, pages
from dashboard.catalogue import CATALOGUE
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow.kafka import KafkaError, Record, TopicPeek
from orderflow.settings import KafkaSettings
from tests.support import operator_client
from tests.unit.test_dashboard_view import email, placed, verdict

EVIL = "<script>alert(1)</script>"
API = "http://127.0.0.1:5999"


def settings(**overrides: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="p."), feed_mode="off",
                    lag_seconds=0, orders_api_url=API + "/", **overrides)


@pytest.fixture
def client() -> FlaskClient:
    order = placed("o-1", price="12.30")
    state = DashboardState()
    state.apply_all([order, verdict(order, "rejected", reason=EVIL, after=2), placed("o-2"),
                     verdict(placed("o-2")), email(placed("o-2"), "failed", error=EVIL)])
    return operator_client(create_app(settings(), view=state))


def test_order_page_shows_the_timeline_escaped(client: FlaskClient) -> None:
    response = client.get("/orders/o-1")
    assert response.status_code == 200
    html = response.text
    assert 'data-step="received"' in html and 'data-step="rejected"' in html and 'data-step="emailed"' not in html
    assert "+2.0 s" in html  # the time the verdict took
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    failed = client.get("/orders/o-2").text
    assert 'data-step="email_failed"' in failed and EVIL not in failed and 'id="order-stage"' in failed


def test_unknown_order_is_a_404_page_that_keeps_looking(client: FlaskClient) -> None:
    markup = "x<img src=x onerror=alert(1)>"
    response = client.get(f"/orders/{markup}")
    assert response.status_code == 404 and "not among" in response.text
    assert markup not in response.text and "x&lt;img src=x onerror=alert(1)&gt;" in response.text  # escaped too
    assert client.get("/api/orders/nope").status_code == 404


def test_api_order_is_the_held_order(client: FlaskClient) -> None:
    body = client.get("/api/orders/o-1").json
    assert body is not None and body["stage"] == "rejected" and body["verdict"]["reason"] == EVIL
    assert body["total"] == "12.30"


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
    assert {"/", "/api/state", "/api/stream", "/orders/<order_id>", "/topics", "/shop"} <= {
        rule.rule for rule in app.url_map.iter_rules()}


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
