"""One INFO line every few seconds instead of one per order.

A service notes each order's outcome here; the per-order line itself is logged at DEBUG (where
``<SERVICE>_LOG_LEVEL=DEBUG`` follows one order through every service), and at INFO the tally says,
at most every ``every`` seconds, how many orders went which way since the last line. Formatting and
writing a JSON log line per order was a large part of every service's CPU per order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter


class Tally:
    """Outcomes counted and logged together; thread-safe (the API notes from its request threads)."""

    def __init__(self, log: logging.Logger, what: str, every: float = 10.0) -> None:
        self.log = log
        self.what = what
        self.every = every
        self._counts: Counter[str] = Counter()
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def note(self, outcome: str, n: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts[outcome] += n
            if now - self._since < self.every:
                return
            counts, self._counts = self._counts, Counter()
            took, self._since = now - self._since, now
        if self.log.isEnabledFor(logging.INFO):
            shown = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
            self.log.info("%s in the last %.0fs: %s", self.what, took, shown,
                          extra={"tally": dict(counts), "seconds": round(took, 1)})
