"""The order store's edge of the dashboard: one daemon thread keeping the view's counts and latest orders.

A turn either *loads* or *follows*. Loading reads the store's latest change number, its counters and
its newest ``max_orders`` rows (pages of the ``(placed_at, order_id)`` index): a bounded read, however
long the history, so the dashboard is ready as soon after its start as a few index reads take.
Following reads the latest change number and, when it moved, the rows changed since
(``changed_since``, oldest change first) and the counters. It loads instead

* at the first turn and after any failure (the store could not be read: it may be another one now);
* when the change number went back: the store was rebuilt from the topics (a new file or database);
* when more than ``catch_up`` rows changed since the last turn: reading the newest rows again costs
  less than replaying every change (a projector catching up, a dashboard that was stopped);
* every ``resync_seconds``: a store rebuilt past the dashboard's change number between two turns
  cannot be told from one that moved on, so what is held is read afresh now and then (a reload
  sends the page only what it changed).

The dashboard only reads: the store is opened read-only (``OrderStore.open(read_only=True)``), never
migrated; while it cannot be read (no projector yet, a database that is down) the turn fails, the
status says why, and turns go on with a backoff until it can.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dashboard.view import DashboardState
from orderflow.background import BackgroundLoop
from orderflow.events import utcnow
from orderflow.kafka import Backoff
from orderflow.store import OrderRow, OrderStore, StoreCorrupted, StoreUnavailable

log = logging.getLogger(__name__)

PAGE = 500  # rows per read while loading or following
CATCH_UP = 2_000  # changes past which a turn loads the newest rows instead of following them


class StoreFeed(BackgroundLoop):
    """The thread, the reads it did (``rows_read``: every row any read returned) and how it stands."""

    def __init__(self, store: OrderStore, state: DashboardState, lock: threading.Lock, *, interval: float = 0.3,
                 catch_up: int | None = None, resync_seconds: float = 60.0, backoff: tuple[float, float] = (0.5, 15.0),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(thread_name="dashboard-store")
        self.store = store
        self.state = state
        self.lock = lock
        self.interval = interval
        self.catch_up = catch_up or max(CATCH_UP, state.max_orders)
        self.resync_seconds = resync_seconds
        self.backoff = backoff
        self.clock = clock
        self.seq = 0  # every change up to this one is in the view
        self.connected = False
        self.ready = False  # loaded once: the counts shown are the store's
        self.last_error: str | None = None
        self.rows_read = 0
        self.loads = 0
        self._loaded_at: float | None = None  # None: the next turn loads

    # -- lifecycle -----------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {"connected": self.connected, "ready": self.ready, "error": self.last_error,
                "rows_read": self.rows_read, "loads": self.loads}

    # -- turns ---------------------------------------------------------------------------------

    def turn(self) -> None:
        """Load or follow once (see the module's docstring); store errors are raised."""
        if self._loaded_at is None:
            self._load(baseline=True)
        elif self.clock() - self._loaded_at >= self.resync_seconds:
            self._load(baseline=False)
        else:
            self._follow()

    def _run(self) -> None:
        backoff = Backoff(*self.backoff)
        while not self._stop.is_set():
            try:
                self.turn()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any database trouble
                self.connected, self._loaded_at = False, None
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                pause = backoff.next()
                if isinstance(exc, StoreUnavailable | StoreCorrupted):
                    log.warning("order store not readable: %s; trying again in %.1fs", self.last_error, pause)
                else:
                    log.exception("reading the order store failed; trying again in %.1fs", pause)
                self._stop.wait(pause)
                continue
            self.connected, self.last_error = True, None
            backoff.reset()
            self._stop.wait(self.interval)

    def _load(self, *, baseline: bool) -> None:
        seq = self.store.last_seq()
        counts = self.store.counts()
        rows = self._newest()
        with self.lock:
            self.state.load_orders(rows)
            self.state.set_counts(counts, utcnow(), baseline=baseline)
        self.seq, self._loaded_at = seq, self.clock()
        self.loads += 1
        self.ready = True

    def _newest(self) -> list[OrderRow]:
        """The newest ``max_orders`` rows, a page of the index at a time."""
        rows: list[OrderRow] = []
        while len(rows) < self.state.max_orders:
            want = min(PAGE, self.state.max_orders - len(rows))
            page = self.store.page(rows[-1].cursor if rows else None, want)
            self.rows_read += len(page)
            rows += page
            if len(page) < want:
                break
        return rows

    def _follow(self) -> None:
        last = self.store.last_seq()
        if last == self.seq:
            return
        if last < self.seq:
            log.info("the order store's change number went back (%d after %d): it was rebuilt; reading it again",
                     last, self.seq)
            self._load(baseline=True)
            return
        if last - self.seq > self.catch_up:
            self._load(baseline=False)
            return
        budget = self.catch_up
        while budget > 0:
            rows = self.store.changed_since(self.seq, min(PAGE, budget))
            self.rows_read += len(rows)
            budget -= len(rows)
            if rows:
                with self.lock:
                    self.state.apply_rows(rows)
                self.seq = rows[-1].seq
            if len(rows) < PAGE:
                break
        counts = self.store.counts()
        with self.lock:
            self.state.set_counts(counts, utcnow())
