"""devtools.ports.port_holder and devtools.brokerguard.PidFile: who holds a port, whose broker runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from devtools.brokerguard import PidFile, alive, die_with_parent
from devtools.ports import PortHolder, free_port, port_holder


def test_the_process_listening_on_a_port_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        holder = port_holder(port)
        assert holder is not None and holder.pid == os.getpid()
        assert f"port {port} is held by pid {os.getpid()}" in holder.describe()
    assert port_holder(port) is None


def test_a_connected_socket_on_the_port_is_not_a_holder() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)):
            pass
    assert port_holder(port) is None


def test_a_kafka_holder_is_described_by_its_data_directory() -> None:
    command = ["java", "-Xmx512m", "-cp", "libs/*", "kafka.Kafka", "/old/.kafka/run/server.properties"]
    holder = PortHolder(9092, 4242, command)
    assert holder.kafka_data_dir == Path("/old/.kafka/run")
    assert holder.describe() == "port 9092 is held by pid 4242 (a Kafka broker with data in /old/.kafka/run)"
    assert PortHolder(9092, None, []).describe() == "port 9092 is held by a process this user cannot see"


def test_a_pid_file_names_only_a_running_broker_of_its_own_data(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path / "server.properties")])
    try:
        mine = PidFile(tmp_path, str(tmp_path / "server.properties"))
        mine.write(child.pid)
        assert mine.running() == child.pid
        assert PidFile(tmp_path, "/another/server.properties").running() is None  # a reused pid is not ours
        mine.stop_leftover(timeout=10)
        assert not alive(child.pid) and not mine.path.exists()
    finally:
        child.kill()
        child.wait()
    assert mine.running() is None


def test_a_child_started_to_die_with_its_parent_dies_when_the_parent_is_killed(tmp_path: Path) -> None:
    """The parent is a Python process that starts a sleeping grandchild and is then SIGKILLed."""
    script = (
        "import subprocess, sys, time\n"
        "from devtools.brokerguard import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '120'], preexec_fn=die_with_parent(), start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    assert die_with_parent() is not None, "Linux has PR_SET_PDEATHSIG"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None
    grandchild = int(parent.stdout.readline())
    assert alive(grandchild)
    parent.kill()
    parent.wait()
    from tests.support import wait_until

    wait_until(lambda: not alive(grandchild), 10, 0.05, "the grandchild to die with its parent")
