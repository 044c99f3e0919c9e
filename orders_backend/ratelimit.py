"""Per-client limits on ``POST /order`` (Flask-Limiter), counted in one place for every gunicorn worker.

The counters live in a small SQLite file shared by the workers of one API (``sqlite:///<path>``, a
fixed-window storage for the ``limits`` library, which has no file-backed storage of its own), so the
limit holds however requests are spread over workers; API replicas on several hosts point
``ORDERS_RATE_LIMIT_STORAGE`` at Redis instead (``redis://``, supported by ``limits`` itself).
A client is the customer of the API key it gives, otherwise its address.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from typing import Any

from flask import g, request
from flask_limiter import Limiter
from limits.storage import Storage


class SqliteStorage(Storage):
    """Fixed-window counters in SQLite (WAL); what a counter needs to survive is only its window."""

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri.removeprefix("sqlite://")
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a counter lost in a crash only lets a few requests more in
            db.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER, expires REAL)")
            self._local.db = db
        return db

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        row = self._db().execute(
            "INSERT INTO counters (key, count, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN expires <= ? THEN excluded.count ELSE count + excluded.count END, "
            "expires = CASE WHEN expires <= ? THEN excluded.expires ELSE expires END RETURNING count",
            (key, amount, now + expiry, now, now)).fetchone()
        return int(row[0])

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT count FROM counters WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM counters WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        return self._db().execute("SELECT 1").fetchone() is not None

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))


def client_key() -> str:
    """The client a limit counts: the customer whose configured key it gave, or else its address (a key
    nobody configured counts as no key, so inventing keys buys no extra requests)."""
    customer = g.get("customer")
    return f"customer:{customer}" if customer is not None else f"addr:{request.remote_addr}"


def make_limiter(storage_uri: str) -> Limiter:
    # Its own headers stay off: they would put the limit's Retry-After on every answer of the route,
    # a 503's included. A 429 gets its Retry-After from ``retry_after``.
    return Limiter(key_func=client_key, storage_uri=storage_uri, strategy="fixed-window", headers_enabled=False,
                   default_limits=[], application_limits=[])


def retry_after(limiter: Limiter) -> int:
    """Seconds until the breached limit's window ends (at least 1)."""
    limit = limiter.current_limit
    return max(1, math.ceil(limit.reset_at - time.time())) if limit is not None else 1
