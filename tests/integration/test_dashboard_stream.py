"""Live streams under gunicorn, as ``python -m dashboard`` runs them: threads, limits, gone clients, SIGTERM.

No Kafka and no order store needed: the readers are off, the streams carry the (empty) state and heartbeats.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServiceProcess, free_port, login_cookie, operator_env, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[ServiceProcess, int]]:
    port = free_port()
    env = {"DASHBOARD_HOST": "127.0.0.1", "DASHBOARD_PORT": str(port), "DASHBOARD_FEED_MODE": "off",
           "DASHBOARD_THREADS": "4", "DASHBOARD_MAX_STREAMS": "2", "DASHBOARD_LAG_SECONDS": "0",
           "DASHBOARD_STREAM_HEARTBEAT_SECONDS": "1", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "STORE_DATABASE_URL": f"sqlite:///{tmp_path / 'store' / 'orders.sqlite3'}", **operator_env()}
    service = ServiceProcess("dashboard", env, tmp_path).start()
    try:
        wait_until(lambda: health(port) is not None, 60, what="the dashboard")
        yield service, port
    finally:
        service.stop()


def health(port: int) -> dict | None:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def open_stream(port: int) -> socket.socket:
    """A raw HTTP client of /api/stream, logged in, that has read the first state event."""
    cookie = login_cookie(f"http://127.0.0.1:{port}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: dashboard\r\nCookie: {cookie}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    received = b""
    while b"event: state" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200") and b"text/event-stream" in received
    return sock


def test_streams_hold_threads_within_their_limit_and_end_when_clients_go(
        dashboard: tuple[ServiceProcess, int]) -> None:
    _, port = dashboard
    first, second = open_stream(port), open_stream(port)
    third = urllib.request.Request(f"http://127.0.0.1:{port}/api/stream",
                                   headers={"Cookie": login_cookie(f"http://127.0.0.1:{port}")})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(third, timeout=5)
    assert refused.value.code == 503
    refused.value.close()  # else gunicorn 27's graceful close waits up to 2 s for us, on its main loop
    assert health(port) == {"status": "ok", "kafka": "off", "store": "off",
                            "streams": {"open": 2, "limit": 2}}  # threads left
    first.close()
    second.close()
    wait_until(lambda: (health(port) or {}).get("streams", {}).get("open") == 0, 10, 0.2, "streams of gone clients")
    open_stream(port).close()  # a slot is free again


def test_sigterm_ends_open_streams_at_once(dashboard: tuple[ServiceProcess, int]) -> None:
    service, port = dashboard
    stream = open_stream(port)
    started = time.monotonic()
    assert service.stop(timeout=30) == 0
    assert time.monotonic() - started < 8  # well within gunicorn's graceful timeout (10 s) that a stream would use
    stream.settimeout(5)
    rest = b""
    while chunk := stream.recv(65536):
        rest += chunk
    assert rest.endswith(b"0\r\n\r\n")  # the stream was ended properly (last chunk), not cut
    stream.close()
