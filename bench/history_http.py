"""HTTP for the history step: waiting for a server to answer, timed keep-alive requests, the dashboard's login."""

from __future__ import annotations

import http.client
import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
from typing import Any

from bench.procs import Proc

RETRIED = (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError)


def wait_ready(url: str, proc: Proc, timeout: float = 90, interval: float = 0.02) -> float:
    """Seconds from ``proc``'s start to the first 200 from ``url`` (a new connection per try)."""
    deadline = proc.started + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - proc.started
        except OSError:
            pass
        if not proc.alive():
            raise RuntimeError(f"{proc.module} exited before answering {url}; see {proc.log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.module}: no 200 from {url} in {timeout:.0f}s; see {proc.log}")
        time.sleep(interval)


class KeepAlive:
    """A few keep-alive connections to one server, used in turn, one request at a time; each request timed.

    A connection the server closed while idle (gunicorn's keep-alive timeout) is opened again and the
    request sent once more; only the attempt that is answered is timed.
    """

    def __init__(self, port: int, connections: int = 4) -> None:
        self.port = port
        self.pool = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(connections)]
        self.turn = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        """(status, body, seconds from sending the request to having read the whole answer)."""
        self.turn = (self.turn + 1) % len(self.pool)
        for attempt in (1, 2):
            conn = self.pool[self.turn]
            try:
                began = time.perf_counter()
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                return response.status, data, time.perf_counter() - began
            except RETRIED:
                conn.close()
                self.pool[self.turn] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self.pool:
            conn.close()


def logged_in(port: int, operator: str, password: str) -> Any:
    """A urllib opener holding the dashboard's operator session (login form with its CSRF token)."""
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base}/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("the dashboard's login page has no CSRF token")
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "operator": operator, "password": password})
    opener.open(f"{base}/login", data=form.encode(), timeout=30).read()
    return opener
