"""The soak's clients: orders posted at a steady rate, each one again with its order_id until it is answered 2xx."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

from bench.common import ORDER_BODY

RETRY_PAUSE = 0.1  # a client's pause before posting an order that was not answered 2xx again


@dataclass(frozen=True)
class Attempt:
    order_id: str
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no HTTP answer


@dataclass
class Clients:
    """``threads`` clients posting ``rate`` orders/s in all; an order is posted until it is answered 2xx."""

    host: str
    port: int
    rate: float
    threads: int = 4
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, float] = field(default_factory=dict)  # order_id -> when its 2xx arrived
    created: list[float] = field(default_factory=list)  # when each 201 arrived
    pending: set[str] = field(default_factory=set)  # posted, not yet answered 2xx

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._no_new = threading.Event()
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.threads)]

    def start(self) -> Clients:
        for worker in self._workers:
            worker.start()
        return self

    def finish(self, timeout: float) -> None:
        """Post no new orders; wait up to ``timeout`` for the pending ones to be answered 2xx."""
        self._no_new.set()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        for worker in self._workers:
            worker.join(35)

    def _client(self, number: int) -> None:
        interval = self.threads / self.rate
        due = time.monotonic() + number * interval / self.threads
        conn: http.client.HTTPConnection | None = None
        serial = 0
        order_id: str | None = None
        while not self._stop.is_set():
            if order_id is None:
                if self._no_new.is_set():
                    return
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                due = max(due + interval, time.monotonic() - interval)
                order_id = f"soak-{number}-{serial}"
                serial += 1
                with self._lock:
                    self.pending.add(order_id)
            body = json.dumps({**ORDER_BODY, "user_id": order_id, "order_id": order_id}).encode()
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                conn.request("POST", "/order", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            ended = time.monotonic()
            with self._lock:
                self.attempts.append(Attempt(order_id, started, ended, status))
                if 200 <= status < 300:
                    self.accepted[order_id] = ended
                    if status == 201:
                        self.created.append(ended)
                    self.pending.discard(order_id)
            if 200 <= status < 300:
                order_id = None
            else:
                time.sleep(RETRY_PAUSE)
        if conn is not None:
            conn.close()

    def first_201_after(self, when: float) -> float | None:
        """When the first order after ``when`` was acknowledged by the broker (201; a 200 for a repeat can
        come from what the API has already read, without the broker)."""
        with self._lock:
            times = [t for t in self.created if t >= when]
        return min(times) if times else None

    def answers_between(self, begin: float, end: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if begin <= a.ended <= end]
