"""``GET /api/stream``: the dashboard's state as server-sent events.

The first message (``event: state``) is the whole state; after it, at most every
``stream_interval_ms``, a message with what changed (``since`` > 0: only the orders that changed,
plus the ids of every held order). A quiet stream gets a comment line every
``stream_heartbeat_seconds`` so that a client that went away is noticed even when nothing changes;
on every tick the socket is also checked for the client having closed it.

Each open stream holds one gunicorn thread, so at most ``max_streams`` are open at once (always fewer
than the threads): another gets 503 and the page polls ``/api/state`` instead. A stream ends after
``stream_max_seconds`` (the browser's EventSource reconnects by itself), and every stream ends at
once when the worker is told to stop (``Streams.close``, called from the gunicorn config).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, request

from dashboard.feed import Feed
from dashboard.settings import Settings
from orderflow import web

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how soon EventSource reconnects after a stream ends


class Streams:
    """Counts the open streams against their limit; ``close()`` ends them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.open >= self.limit or self.closing.is_set():
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open -= 1

    def close(self) -> None:
        self.closing.set()


def message(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    """One server-sent event; the JSON is compact, so it is one ``data:`` line."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def client_gone(sock: Any) -> bool:
    """Whether the client closed its end (an idle EventSource never sends, so readable means EOF)."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def events(feed: Feed, streams: Streams, settings: Settings, sock: Any = None) -> Iterator[str]:
    """The stream's body: the state, then changes, heartbeats while quiet, until one of the ends above."""
    interval = settings.stream_interval_ms / 1000
    started = last_write = time.monotonic()
    since = 0
    sent: tuple[Any, ...] | None = None
    yield f"retry: {RETRY_MS}\n\n"
    while not streams.closing.is_set():
        now = time.monotonic()
        if now - started >= settings.stream_max_seconds or client_gone(sock):
            return
        if feed.signature() != sent:
            data = feed.snapshot(since=since)
            sent = feed.signature(data)
            since = data["version"]
            yield message("state", data, since)
            last_write = now
        elif now - last_write >= settings.stream_heartbeat_seconds:
            yield ": heartbeat\n\n"
            last_write = now
        streams.closing.wait(interval)


def init_app(app: Flask, feed: Feed, settings: Settings) -> Streams:
    assert settings.max_streams is not None  # set by the settings' validator
    streams = Streams(settings.max_streams)

    @app.get("/api/stream")
    def api_stream() -> Any:
        """Server-sent events: the state, then its changes (see the module's docstring)."""
        if not streams.acquire():
            return web.unavailable("too many live streams; poll /api/state", retry_after=30)
        try:
            body = events(feed, streams, settings, request.environ.get("gunicorn.socket"))
            response = Response(body, mimetype="text/event-stream")
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the events back
            response.call_on_close(streams.release)
        except BaseException:
            streams.release()
            raise
        return response

    return streams
