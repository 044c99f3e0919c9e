"""``/api/stream`` with a hand-filled view and no Kafka: first the state, then diffs, heartbeats, limits, ends."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask

from dashboard import create_app
from dashboard.feed import Feed
from dashboard.settings import Settings
from dashboard.stream import Streams, client_gone, message
from dashboard.view import DashboardState
from orderflow.settings import KafkaSettings
from tests.support import operator_client
from tests.unit.test_dashboard_view import Book, placed, shown, verdict


def make_app(book: Book | None = None, **overrides: Any) -> Flask:
    state = DashboardState()
    shown(state, book or Book(), placed("a", minute=1), placed("b", minute=2))
    options = {"feed_mode": "off", "lag_seconds": 0, "stream_interval_ms": 50, "stream_heartbeat_seconds": 0.3,
               **overrides}
    return create_app(Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"), **options), view=state)


class EventReader:
    """Reads a streamed response chunk by chunk: each chunk is one event, a heartbeat, or the retry hint."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks: Iterator[bytes] = response.iter_encoded()

    def next(self) -> str:
        return next(self.chunks).decode()

    def next_state(self, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.next()
            if chunk.startswith("event: state"):
                lines = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
                data: dict[str, Any] = json.loads(lines["data"])
                assert int(lines["id"]) == data["version"]
                return data
        raise AssertionError("no state event in time")


def test_message_is_one_server_sent_event() -> None:
    assert message("state", {"a": "x\ny"}, 7) == 'event: state\nid: 7\ndata: {"a":"x\\ny"}\n\n'


def test_stream_sends_the_state_then_only_what_changed_then_heartbeats() -> None:
    book = Book()
    app = make_app(book)
    feed: Feed = app.feed
    response = operator_client(app).get("/api/stream", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Accel-Buffering"] == "no"
    events = EventReader(response)
    try:
        assert events.next() == "retry: 2000\n\n"
        first = events.next_state()
        assert first["since"] == 0 and [o["order_id"] for o in first["orders"]] == ["b", "a"]
        assert first["feed"]["running"] is False
        with feed.lock:
            shown(feed.state, book, verdict(placed("a", minute=1)))
        diff = events.next_state()
        assert diff["since"] == first["version"] and [o["order_id"] for o in diff["orders"]] == ["a"]
        assert diff["orders"][0]["stage"] == "confirmed" and diff["order_ids"] == ["b", "a"]
        started = time.monotonic()
        assert events.next() == ": heartbeat\n\n"  # nothing changed: a heartbeat, not a repeat of the state
        assert time.monotonic() - started >= 0.2
        assert app.streams.open == 1
    finally:
        response.close()
    assert app.streams.open == 0  # closing the response frees the slot


def test_streams_over_the_limit_get_503_and_pages_still_answer() -> None:
    app = make_app(threads=3, max_streams=2)
    client = operator_client(app)
    open_ = [client.get("/api/stream", buffered=False) for _ in range(2)]
    try:
        refused = client.get("/api/stream")
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert client.get("/healthz").json["streams"] == {"open": 2, "limit": 2}
        assert client.get("/api/state").status_code == 200
    finally:
        for response in open_:
            response.close()
    again = client.get("/api/stream", buffered=False)
    assert again.status_code == 200
    again.close()


def test_closing_the_streams_ends_them() -> None:
    app = make_app(stream_heartbeat_seconds=60)
    response = operator_client(app).get("/api/stream", buffered=False)
    events = EventReader(response)
    events.next_state()
    app.streams.close()  # what SIGTERM to the worker does
    assert list(events.chunks) == []
    response.close()
    assert operator_client(app).get("/api/stream").status_code == 503  # no new ones while stopping


def test_a_stream_ends_after_its_longest_life() -> None:
    app = make_app(stream_max_seconds=0.3, stream_heartbeat_seconds=60)
    response = operator_client(app).get("/api/stream", buffered=False)
    started = time.monotonic()
    chunks = list(EventReader(response).chunks)  # ends by itself: the browser reconnects
    assert 0.25 < time.monotonic() - started < 5 and sum(c.startswith(b"event: state") for c in chunks) == 1
    response.close()


def test_a_client_that_closed_its_socket_is_noticed() -> None:
    server, client = socket.socketpair()
    try:
        assert client_gone(server) is False
        client.sendall(b"x")  # data, not an end
        assert client_gone(server) is False
        client.close()
        server.recv(1)
        assert client_gone(server) is True
    finally:
        server.close()
    assert client_gone(None) is False and client_gone(server) is True  # no socket known / a closed one


def test_streams_count_their_slots() -> None:
    streams = Streams(limit=1)
    assert streams.acquire() and not streams.acquire()
    streams.release()
    assert streams.acquire()

