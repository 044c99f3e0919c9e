"""``make run`` (devtools.devstack) killed or stopped leaves no broker and no service behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.ports import port_holder
from tests.support import ROOT, free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("java") is None, reason="starts its own broker")]


def processes_with(marker: str) -> list[int]:
    """Pids of the processes whose environment carries ``marker`` (every descendant of the stack)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    stat = (proc / "stat").read_text()
                    if stat.rsplit(")", 1)[-1].split()[0] != "Z":
                        found.append(int(proc.name))
            except OSError:
                continue
    return found


# A parent that runs the stack and waits for it, as `make run` does.
PARENT = ["-c", "import subprocess, sys; subprocess.run(sys.argv[1:])", sys.executable]


class Devstack:
    def __init__(self, tmp_path: Path, under_parent: bool = False) -> None:
        self.marker = f"ORDERFLOW_STACK_UNDER_TEST={uuid.uuid4().hex}"
        self.kafka_port, self.orders_port, self.dashboard_port = free_port(), free_port(), free_port()
        self.data = tmp_path / "kafka"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("KAFKA_", "DEVSTACK_"))}
        env.update({
            self.marker.split("=")[0]: self.marker.split("=")[1],
            "DEVSTACK_KAFKA_PORTS": str(self.kafka_port), "DEVSTACK_KAFKA_CONTROLLER_PORTS": str(free_port()),
            "DEVSTACK_KAFKA_DATA": str(self.data), "DEVSTACK_RUN_DIR": str(tmp_path / "run"),
            "ORDERS_PORT": str(self.orders_port), "DASHBOARD_PORT": str(self.dashboard_port),
            "EMAIL_SMTP_PORT": str(free_port()), "ORDERS_WORKERS": "1", "KAFKA_PARTITIONS": "2",
            "TRANSACTIONS_METRICS_PORT": "0", "EMAIL_METRICS_PORT": "0", "ANALYTICS_METRICS_PORT": "0",
        })
        self.log = tmp_path / "devstack.log"
        with open(self.log, "wb") as out:
            command = [sys.executable, *(PARENT if under_parent else []), "-m", "devtools.devstack"]
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def left_behind(self) -> list[str]:
        return [f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:200]!r}" for pid in processes_with(self.marker)]


@pytest.fixture(params=[False])
def devstack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Devstack]:
    stack = Devstack(tmp_path, under_parent=request.param)
    try:
        yield stack
    finally:
        for pid in [stack.process.pid, *processes_with(stack.marker)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stack.process.wait()


def test_a_killed_stack_takes_its_broker_and_services_with_it(devstack: Devstack) -> None:
    wait_until(lambda: "Ready in" in devstack.output() or devstack.process.poll() is not None, 240, 1,
               "the stack's Ready line")
    assert "Ready in" in devstack.output(), devstack.output()[-4000:]
    running = devstack.left_behind()
    assert len(running) >= 7, running  # devstack, the broker, honcho, five services and the SMTP catcher
    held = port_holder(devstack.kafka_port)
    assert held is not None and held.kafka_data_dir == devstack.data

    devstack.process.send_signal(signal.SIGKILL)
    devstack.process.wait()

    wait_until(lambda: not devstack.left_behind(), 60, 0.5, "no process of the killed stack")
    assert port_holder(devstack.kafka_port) is None
    assert port_holder(devstack.orders_port) is None and port_holder(devstack.dashboard_port) is None


def test_a_stack_stopped_while_its_broker_starts_stops_the_broker(devstack: Devstack) -> None:
    wait_until(lambda: (devstack.data / "broker.pid").exists() or devstack.process.poll() is not None, 120, 0.1,
               "the broker to be launched")
    devstack.process.send_signal(signal.SIGTERM)
    assert devstack.process.wait(60) == 0, devstack.output()[-4000:]
    assert not devstack.left_behind()
    assert "Ready in" not in devstack.output() and "Kafka ready" not in devstack.output()


@pytest.mark.parametrize("devstack", [True], indirect=True)
def test_killing_the_parent_that_started_the_stack_stops_it(devstack: Devstack) -> None:
    """``make run`` killed with -9: the stack it started stops as on a SIGTERM, broker and services too."""
    wait_until(lambda: "Ready in" in devstack.output() or devstack.process.poll() is not None, 240, 1,
               "the stack's Ready line")
    assert "Ready in" in devstack.output(), devstack.output()[-4000:]
    devstack.process.send_signal(signal.SIGKILL)  # the parent, not the stack
    devstack.process.wait()

    wait_until(lambda: not devstack.left_behind(), 60, 0.5, "no process of the stack whose parent was killed")
    assert port_holder(devstack.kafka_port) is None
    assert "Kafka stopped" in devstack.output(), devstack.output()[-4000:]  # stopped cleanly, not killed
