"""The broker killed with SIGKILL under the whole system: every process finds its way back by itself.

Each test has a broker of its own (it kills it) and restarts it on the same data folder and ports,
as a supervisor would. Orders go through the API under gunicorn; an order not answered 2xx is
posted again with its order_id until it is, and at the end each is decided, emailed and counted once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orderflow.events import OrderPlaced, OrderRequest, utcnow
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_CONFIRMED
from orders_backend.orders import place
from tests.integration.test_resilience import Pipeline, assert_exactly_once
from tests.support import LiveApi, LocalKafka, SmtpSink, free_port, wait_until

pytestmark = pytest.mark.integration


class OwnBroker:
    """A broker of the test's own, killed and started again on the same folder and ports."""

    def __init__(self, folder: Path) -> None:
        self.broker = LocalKafka(folder, free_port(), free_port())

    def start(self) -> None:
        self.broker = LocalKafka(self.broker.data_dir, self.broker.port, self.broker.controller_port).start()

    def kill(self) -> None:
        self.broker.kill()

    def stop(self) -> None:
        self.broker.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[OwnBroker, KafkaSettings]]:
    broker = OwnBroker(tmp_path / "kafka")
    broker.start()
    settings = KafkaSettings(bootstrap_servers=broker.broker.bootstrap_servers, topic_prefix="own.", partitions=3,
                             replica_id="own")
    ensure_topics(settings)
    yield broker, settings
    broker.stop()


def status_of(url: str, body: object | None = None, timeout: float = 30) -> int:
    """POST ``body`` as JSON (GET when None); the status code, or 0 without an HTTP answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def order_body(i: int) -> dict[str, object]:
    price = "12000.00" if i % 50 == 7 else f"{i % 90 + 1}.{i % 100:02d}"  # 2% over the limit: rejected
    return {"user_id": f"u{i % 97}", "order_id": f"k{i}", "user_email": f"u{i % 97}@example.com",
            "order_details": {"price": price}}


@dataclass
class Answer:
    order_id: str
    started: float
    ended: float
    status: int


@dataclass
class RetryingClients:
    """Post each order until it is answered 2xx, as a client told to retry with its order_id does."""

    url: str
    bodies: list[dict[str, object]]
    threads: int = 4
    per_second: float = 40.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.next = 0
        self.workers = [threading.Thread(target=self._post, daemon=True) for _ in range(self.threads)]

    def start(self) -> RetryingClients:
        for worker in self.workers:
            worker.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _post(self) -> None:
        while True:
            with self.lock:
                if self.next >= len(self.bodies):
                    return
                body, self.next = self.bodies[self.next], self.next + 1
            while True:
                started = time.monotonic()
                status = status_of(self.url, body)
                with self.lock:
                    self.answers.append(Answer(str(body["order_id"]), started, time.monotonic(), status))
                if 200 <= status < 300:
                    break
                time.sleep(0.2)
            time.sleep(self.threads / self.per_second)

    def accepted(self) -> set[str]:
        with self.lock:
            return {a.order_id for a in self.answers if 200 <= a.status < 300}

    def created_between(self, begin: float, end: float) -> list[Answer]:
        """201 answers to requests made while ``begin``..``end`` (both ends inside). A 200 may come for a
        repeat of an order the API has read already, broker or not."""
        with self.lock:
            return [a for a in self.answers if a.status == 201 and a.started >= begin and a.ended <= end]


def kill_until_unready(broker: OwnBroker, api: str) -> float:
    """SIGKILL the broker; return once the API says it cannot take orders (its readiness tells the truth)."""
    broker.kill()
    killed = time.monotonic()
    wait_until(lambda: status_of(f"{api}/healthz", timeout=5) == 503, 60, interval=0.5, what="/healthz unready")
    return killed


def test_broker_sigkilled_twice_mid_stream_every_order_once(
        own_broker: tuple[OwnBroker, KafkaSettings], smtp_sink: SmtpSink, logs_dir: Path) -> None:
    broker, settings = own_broker
    bodies = [order_body(i) for i in range(1500)]
    with Pipeline(settings, smtp_sink, logs_dir) as pipeline, \
            LiveApi(settings, logs_dir, ORDERS_PUBLISH_TIMEOUT_SECONDS="2") as api:
        clients = RetryingClients(f"{api.url}/order", bodies).start()
        for round_, confirmed in enumerate((300, 800)):
            wait_until(lambda n=confirmed: pipeline.count(ORDER_CONFIRMED) >= n, 180, what=f"{confirmed} verdicts")
            killed = kill_until_unready(broker, api.url)
            time.sleep(2)
            restarting = time.monotonic()
            # Nothing may be acknowledged while the broker is dead.
            assert clients.created_between(killed + 0.5, restarting) == [], f"201 with the broker down ({round_})"
            before = len(clients.accepted())
            broker.start()
            wait_until(lambda b=before: len(clients.accepted()) > b + 20, 120, what="orders accepted again")
            wait_until(lambda: status_of(f"{api.url}/healthz", timeout=5) == 200, 60, what="/healthz ready again")
        clients.join(300)
        assert clients.accepted() == {str(b["order_id"]) for b in bodies}, "every order answered 2xx in the end"
        orders = [place(OrderRequest.model_validate(b), utcnow()) for b in bodies]
        assert_exactly_once(pipeline, orders, smtp_sink, email_crashes=0)
        assert all(s.alive() for s in pipeline.services.values()), "every stage waited the outages out"
        assert api.service.alive()


def test_broker_unreachable_at_start_up(own_broker: tuple[OwnBroker, KafkaSettings], smtp_sink: SmtpSink,
                                        logs_dir: Path) -> None:
    broker, settings = own_broker
    broker.kill()
    body = order_body(1)
    with Pipeline(settings, smtp_sink, logs_dir) as pipeline, \
            LiveApi(settings, logs_dir, wait_ready=False, ORDERS_PUBLISH_TIMEOUT_SECONDS="2") as api:
        wait_until(lambda: status_of(f"{api.url}/healthz", timeout=5) == 503, 60, what="/healthz answering unready")
        assert status_of(f"{api.url}/order", body) == 503
        time.sleep(5)  # everything tries to reach the broker for a while
        broker.start()
        wait_until(lambda: status_of(f"{api.url}/order", body) in (200, 201), 60, interval=0.5, what="a 2xx")
        assert status_of(f"{api.url}/healthz") == 200
        order: OrderPlaced = place(OrderRequest.model_validate(body), utcnow())
        assert_exactly_once(pipeline, [order], smtp_sink, email_crashes=0)
        assert all(s.alive() for s in pipeline.services.values()), "every stage waited for the broker"
