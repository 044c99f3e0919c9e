"""Consumer lag per service, measured every few seconds on a thread of its own.

Apart from the reader so that a slow group coordinator (a fresh cluster creating its offsets topic,
a broker restarting) never holds up the live orders. Lag = end offsets − the group's committed offsets
(``orderflow.kafka.group_lag``); a round that fails is shown as an error next to the last figures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dashboard.view import DashboardState
from orderflow.background import BackgroundLoop
from orderflow.events import utcnow
from orderflow.kafka import describe, group_lag, make_admin, make_consumer
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_GROUP, EMAIL_GROUP, ORDER_CONFIRMED, ORDER_DETAILS, TRANSACTIONS_GROUP

log = logging.getLogger(__name__)

# (service = its consumer group, the topic it reads)
WATCHED = ((TRANSACTIONS_GROUP, ORDER_DETAILS), (EMAIL_GROUP, ORDER_CONFIRMED), (ANALYTICS_GROUP, ORDER_CONFIRMED))
TIMEOUT_MS = 5000

LagOf = Callable[[str, str], dict[int, int]]


class LagWatcher(BackgroundLoop):
    """Every ``every`` seconds, each watched group's lag into the state (under the feed's lock)."""

    def __init__(self, kafka: KafkaSettings, every: float, lag_of: LagOf | None = None) -> None:
        super().__init__(thread_name="dashboard-lag")
        self.kafka = kafka
        self.every = every
        self.rounds = 0
        self._lag_of = lag_of or self._group_lag
        self._clients: tuple[Any, Any] | None = None  # (admin, consumer), made on first use
        self._into: tuple[DashboardState, threading.Lock] | None = None  # where the thread records the lag

    def start_into(self, state: DashboardState, lock: threading.Lock) -> None:
        """Start measuring into ``state`` (under ``lock``) unless it runs already."""
        self._into = (state, lock)
        self.start()

    def measure(self, state: DashboardState, lock: threading.Lock) -> None:
        """One round: every watched group, each recorded with its figures or its error."""
        for service, topic in WATCHED:
            try:
                lag, error = self._lag_of(service, topic), None
            except Exception as exc:  # noqa: BLE001 - a failed measurement is shown, never fatal
                lag, error = None, describe(exc)[:200]
                log.debug("lag of %s not measured: %s", service, error)
                self._close()
            with lock:
                state.record_lag(service, topic, lag, utcnow(), error)
        self.rounds += 1

    def _run(self) -> None:
        assert self._into is not None, "started with start_into()"
        state, lock = self._into
        try:
            while not self._stop.is_set():
                self.measure(state, lock)
                self._stop.wait(self.every)
        finally:
            self._close()

    def _group_lag(self, service: str, topic: str) -> dict[int, int]:
        if self._clients is None:
            admin = make_admin(self.kafka, request_timeout_ms=TIMEOUT_MS)
            try:
                consumer = make_consumer(self.kafka, group_id=None, bootstrap_timeout_ms=TIMEOUT_MS,
                                         client_id=f"dashboard-lag-{self.kafka.replica_id}")
            except Exception:
                admin.close()
                raise
            self._clients = (admin, consumer)
        admin, consumer = self._clients
        return group_lag(self.kafka, service, topic, admin=admin, consumer=consumer, timeout_ms=TIMEOUT_MS)

    def _close(self) -> None:
        clients, self._clients = self._clients, None
        if clients is not None:
            for client in clients:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken client must not stop the watcher
                    log.debug("closing a lag client failed", exc_info=True)
