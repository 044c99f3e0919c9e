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
    "read_models", "service_env", "wait_until",
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
        if self.refuse:
            return "451 Try again later"
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
        self.env = {**os.environ, **env}
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


class LiveApi:
    """The orders API as ``python -m orders_backend`` runs it (gunicorn, shipped config) on a free port."""

    def __init__(self, settings: KafkaSettings, log_dir: Path, *, wait_ready: bool = True, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_ready = wait_ready  # False: return once it listens, ready or not
        self.service = ServiceProcess("orders_backend", service_env(
            settings, ORDERS_PORT=str(self.port), ORDERS_HOST="127.0.0.1", ORDERS_WORKERS="2", **env), log_dir)

    def __enter__(self) -> LiveApi:
        from devtools.devstack import answers

        self.service.start()
        if self.wait_ready:
            wait_until(lambda: answers(f"{self.url}/healthz"), 60, what="orders API /healthz")
        else:
            wait_until(lambda: _listening(self.port), 60, what="orders API listening")
        return self

    def __exit__(self, *exc: object) -> None:
        code, log = self.service.stop(), self.service.log()
        assert code == 0, log[-3000:]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
