"""The orders API as an outsider meets it: gunicorn on a socket, hostile requests, odd encodings.

Every refusal is a 4xx with a JSON body naming the problem, and nothing refused reaches Kafka.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from orderflow.events import OrderPlaced
from orderflow.kafka import ensure_topics, read_topic
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS
from tests.support import LiveApi, read_models

pytestmark = pytest.mark.integration

SEED_SHAPED = {"user_id": "u-1", "order_id": "o-1", "user_email": "a@example.com",
               "order_details": {"product": "chair", "quantity": 1, "price": 19.99}}
LIMIT = 64 * 1024  # ORDERS_MAX_BODY_BYTES, the shipped default


@pytest.fixture(scope="module")
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix="http-contract.", partitions=3)
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="module")
def api(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with LiveApi(kafka, tmp_path_factory.mktemp("logs")) as live:
        yield live


def published(kafka: KafkaSettings) -> list[OrderPlaced]:
    return read_models(kafka, kafka.topic(ORDER_DETAILS), OrderPlaced)


def request(api: LiveApi, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            chunked: bool = False) -> tuple[int, dict[str, str], Any]:
    """One request, its body sent in pieces (chunked, or after a Content-Length); a server that answers
    before the whole body is sent (a 413) is heard out rather than taken for a failure."""
    body = body or b""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(len(body))}
        for key, value in {**framing, **(headers or {})}.items():
            conn.putheader(key, value)
        conn.endheaders()
        pieces = [body[i:i + 16 * 1024] for i in range(0, len(body), 16 * 1024)]
        try:
            for piece in pieces:
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed early: what it said is read below
        response = conn.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        return response.status, dict(response.getheaders()), json.loads(raw) if "json" in content_type else raw
    finally:
        conn.close()


def padded(size: int) -> bytes:
    """A valid order of exactly ``size`` bytes (padding in a free-form field's whitespace)."""
    core = json.dumps({**SEED_SHAPED, "order_id": f"pad-{size}"})
    return (core[:-1] + " " * (size - len(core)) + "}").encode()


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("size", [200 * 1024, 10 * 1024 * 1024])
def test_a_chunked_body_over_the_limit_is_refused_like_an_announced_one(api: LiveApi, kafka: KafkaSettings,
                                                                        size: int) -> None:
    status, _, body = request(api, "POST", "/order", padded(size), JSON, chunked=True)
    assert status == 413 and "ORDERS_MAX_BODY_BYTES" in body["message"]
    assert request(api, "POST", "/order", padded(size), JSON)[0] == 413
    assert f"pad-{size}" not in {o.order_id for o in published(kafka)}


def test_a_chunked_body_at_the_limit_is_taken(api: LiveApi, kafka: KafkaSettings) -> None:
    status, _, body = request(api, "POST", "/order", padded(LIMIT), JSON, chunked=True)
    assert status == 201, body
    assert f"pad-{LIMIT}" in {o.order_id for o in published(kafka)}


def test_the_seed_shaped_order_is_taken_with_its_fields(api: LiveApi, kafka: KafkaSettings) -> None:
    status, _, body = request(api, "POST", "/order", json.dumps({**SEED_SHAPED, "order_id": "seed-http"}).encode(),
                              JSON)
    assert status == 201, body
    assert body["order_details"]["product"] == "chair" and body["total"] == "19.99"
    [stored] = [o for o in published(kafka) if o.order_id == "seed-http"]
    assert stored.order_details.extras == {"product": "chair", "quantity": 1}


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/order", {"POST", "OPTIONS"}), ("DELETE", "/order/o-1", {"GET", "HEAD", "OPTIONS"}),
    ("POST", "/healthz", {"GET", "HEAD", "OPTIONS"}),
])
def test_a_wrong_method_names_the_allowed_ones(api: LiveApi, method: str, path: str, allowed: set[str]) -> None:
    status, headers, body = request(api, method, path, b"{}", JSON)
    assert status == 405 and body["error"] == "Method Not Allowed"
    assert {m.strip() for m in headers["Allow"].split(",")} == allowed


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/order/" + "x" * 10_000, {}, 414),
    ("/healthz", {"X-Big": "y" * 10_000}, 431),
])
def test_requests_gunicorn_refuses_itself_get_json_too(api: LiveApi, path: str, headers: dict[str, str],
                                                       status: int) -> None:
    got, response_headers, body = request(api, "GET", path, headers=headers)
    assert got == status and response_headers["Content-Type"] == "application/json"
    assert body["error"] and body["message"]


def test_a_malformed_request_line_gets_json(api: LiveApi) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/9.9\r\n\r\n")
        head, _, rest = sock.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head and json.loads(rest)["error"]


HOSTILE: list[Any] = [
    pytest.param(json.dumps(SEED_SHAPED).encode("utf-16"), JSON, 400, id="utf-16"),
    pytest.param(b'{"user_id": "u", "user_id": "evil", "user_email": "a@b.co", "order_details": {"price": 1}}',
                 JSON, 400, id="duplicate-key"),
    pytest.param(b'{"user_id": "u", "user_email": "a@b.co", "order_details": {"price": NaN}}', JSON, 400,
                 id="nan"),
    pytest.param(b"[" * 50_000, JSON, 400, id="deep-nesting"),
    pytest.param(json.dumps(SEED_SHAPED).encode("latin-1"), {"Content-Type": "application/json; charset=latin-1"},
                 415, id="latin-1"),
    pytest.param(json.dumps({**SEED_SHAPED, "order_details": {"price": "١٠"}}).encode(), JSON, 422,
                 id="arabic-indic-price"),
    pytest.param(json.dumps({**SEED_SHAPED, "order_details": {"items": [
        {"product": "chair\r\nBcc: x@y.z", "quantity": 1, "unit_price": 1}]}}).encode(), JSON, 422, id="crlf-product"),
    pytest.param(json.dumps({**SEED_SHAPED, "order_details": {"price": 1, "notes": "a\u0000b"}}).encode(), JSON, 422,
                 id="nul-in-notes"),
    pytest.param(json.dumps({**SEED_SHAPED, "order_details": {"price": 1, "a": {"b": {"c": {"d": {}}}}}}).encode(),
                 JSON, 422, id="details-too-deep"),
    pytest.param(b"", JSON, 400, id="empty"),
]


@pytest.mark.parametrize(("body", "headers", "status"), HOSTILE)
def test_hostile_bodies_get_a_clear_error_and_publish_nothing(api: LiveApi, kafka: KafkaSettings, body: bytes,
                                                               headers: dict[str, str], status: int) -> None:
    before = len(list(read_topic(kafka, kafka.topic(ORDER_DETAILS))))
    got, _, answer = request(api, "POST", "/order", body, headers)
    assert got == status and answer["error"], answer
    if status in (400, 422):
        assert answer["details"][0]["message"], answer
    assert len(list(read_topic(kafka, kafka.topic(ORDER_DETAILS)))) == before


@pytest.mark.parametrize("order_id", ["%00", "%0d%0a", "%FF%FE", "x" * 65, "%D9%A3"])
def test_an_id_no_order_can_have_is_not_found(api: LiveApi, order_id: str) -> None:
    status, _, body = request(api, "GET", f"/order/{order_id}")
    assert status == 404 and body["error"] == "Not Found"


def test_the_log_holds_no_raw_control_characters_from_requests(api: LiveApi) -> None:
    """Run last in this module: every request above went through this API's log."""
    text = api.service.log()
    assert "\x00" not in text and "Bcc: x@y.z" not in text
    assert all(line.startswith("{") or line.startswith("[") or not line for line in text.splitlines()), (
        "every log line is a JSON object or gunicorn's own, never a continuation made of user text")
