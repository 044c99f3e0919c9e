"""The rate limit's SQLite counters: one count for every worker that opens the file, windows that end."""

from __future__ import annotations

import time
from pathlib import Path

from limits import parse
from limits.strategies import FixedWindowRateLimiter

from orders_backend.ratelimit import SqliteStorage


def test_two_workers_share_one_count(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'limits.sqlite3'}"
    worker_a, worker_b = (FixedWindowRateLimiter(SqliteStorage(uri)) for _ in range(2))
    limit = parse("5/minute")
    taken = [(worker_a if i % 2 else worker_b).hit(limit, "addr:1.2.3.4") for i in range(7)]
    assert taken == [True] * 5 + [False] * 2
    assert worker_a.hit(limit, "addr:5.6.7.8"), "another client has its own count"


def test_a_window_ends(tmp_path: Path) -> None:
    storage = SqliteStorage(f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    assert storage.incr("k", expiry=1) == 1 and storage.incr("k", expiry=1) == 2
    assert storage.get("k") == 2 and storage.get_expiry("k") > time.time()
    time.sleep(1.1)
    assert storage.get("k") == 0 and storage.incr("k", expiry=1) == 1
    storage.clear("k")
    assert storage.get("k") == 0 and storage.check()
