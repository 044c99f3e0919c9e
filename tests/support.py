"""Test helpers: bounded waits, real SMTP sink, service processes, topic reads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from pydantic import BaseModel

from devtools.localkafka import LocalKafka, free_port, stop_process
from orderflow.kafka import TopicPartition, make_consumer, make_producer, read_topic
from orderflow.settings import KafkaSettings

__all__ = [
    "LiveApi", "LocalKafka", "ServiceProcess", "SmtpSink", "StageThread", "drained", "free_port", "produce",
    "read_models", "service_env", "store_env", "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
M = TypeVar("M", bound=BaseModel)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.3, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def produce(settings: KafkaSettings, topic: str, records: list[tuple[str | None, bytes]]) -> None:
    producer = make_producer(settings)
    try:
        for key, value in records:
            producer.send(topic, key=key.encode() if key else None, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def read_models(settings: KafkaSettings, topic: str, model: type[M]) -> list[M]:
    return [model.model_validate_json(r.value) for r in read_topic(settings, topic) if r.value is not None]


class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives; can refuse for a while."""

    def __init__(self, port: int, smtputf8: bool = True) -> None:
        self.port = port
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        self.refuse = False
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        if self.refuse:  # in words real servers use, naming the recipients
            return f"451 4.3.0 {', '.join(envelope.rcpt_tos)}: mailbox busy, try again later"
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content))
            self.raw.append(envelope.original_content or envelope.content)
        return "250 OK"

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class ServiceProcess:
    """``python -m <module>`` with the given environment, output kept in a log file."""

    def __init__(self, module: str, env: dict[str, str], log_dir: Path, name: str | None = None) -> None:
        self.module = module
        self.name = name or module
        # State files beside the logs, not in the working copy's .run/state, unless a test says where.
        state_dir = str(log_dir / "state")
        self.env = {"TRANSACTIONS_STATE_DIR": state_dir, "EMAIL_STATE_DIR": state_dir, **os.environ, **env}
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        return stop_process(self.process, timeout) if self.process is not None else None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def service_env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    return {
        **settings.as_env(),
        # No fixed metrics ports: tests run several replicas and several sessions side by side.
        "TRANSACTIONS_METRICS_PORT": "0", "EMAIL_METRICS_PORT": "0", "ANALYTICS_METRICS_PORT": "0",
        "PROJECTOR_METRICS_PORT": "0",
        **extra,
    }


class StageThread:
    """Runs a ``Stage`` on a thread; ``stop()`` sets its stop flag and waits for a clean exit."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=stage.name, daemon=True)

    def _run(self) -> None:
        try:
            self.stage.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> StageThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stage.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), f"{self.stage.name} did not stop"
        if self.error:
            raise self.error


def drained(settings: KafkaSettings, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every record of ``topic`` as of now."""
    consumer = make_consumer(settings, group_id=group)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(tps)
        return all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps)
    finally:
        consumer.close(autocommit=False)


def store_env(folder: Path) -> dict[str, str]:
    """An order store of its own (a SQLite file in ``folder``) for the processes given this environment."""
    return {"STORE_DATABASE_URL": f"sqlite:///{folder / 'orders.sqlite3'}"}


class LiveApi:
    """The orders API as ``python -m orders_backend`` runs it (gunicorn, shipped config) on a free port, and
    the projector that fills the order store it reads."""

    def __init__(self, settings: KafkaSettings, log_dir: Path, *, wait_ready: bool = True, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_ready = wait_ready  # False: return once it listens, ready or not
        environment = service_env(settings, ORDERS_PORT=str(self.port), ORDERS_HOST="127.0.0.1", ORDERS_WORKERS="2",
                                  **store_env(log_dir), **env)
        self.service = ServiceProcess("orders_backend", environment, log_dir)
        self.projector = ServiceProcess("order_projector", environment, log_dir)

    def __enter__(self) -> LiveApi:
        from devtools.devstack import answers

        self.projector.start()
        self.service.start()
        if self.wait_ready:
            wait_until(lambda: answers(f"{self.url}/healthz"), 60, what="orders API /healthz")
        else:
            wait_until(lambda: _listening(self.port), 60, what="orders API listening")
        return self

    def __exit__(self, *exc: object) -> None:
        codes = self.service.stop(), self.projector.stop()
        assert codes == (0, 0), (self.service.log()[-3000:], self.projector.log()[-3000:])


def operator_client(app: Any) -> Any:
    """A test client of the dashboard ``app`` already logged in as its operator (the login form itself is
    tested in tests/unit/test_dashboard_auth.py)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["operator"] = "operator"
    return client


OPERATOR_PASSWORD = "tests only, not a secret"


def operator_env() -> dict[str, str]:
    """A dashboard process's login settings for tests: the operator's password is OPERATOR_PASSWORD."""
    from werkzeug.security import generate_password_hash

    return {"DASHBOARD_OPERATOR_PASSWORD_HASH": generate_password_hash(OPERATOR_PASSWORD),
            "DASHBOARD_SECRET_KEY": "s" * 64, "DASHBOARD_COOKIE_SECURE": "false"}


def login_cookie(url: str) -> str:
    """Log in to the dashboard at ``url`` through its form (CSRF token included); its session cookie."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{url}/login", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert token is not None, "the login form carries a CSRF token"
    form = urllib.parse.urlencode({"operator": "operator", "password": OPERATOR_PASSWORD,
                                   "csrf_token": token.group(1)}).encode()
    opener.open(f"{url}/login", data=form, timeout=10).close()
    cookie = next((c for c in jar if c.name == "orderflow_operator"), None)
    assert cookie is not None and cookie.value, "logged in"
    return f"{cookie.name}={cookie.value}"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
