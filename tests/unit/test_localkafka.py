"""devtools.localkafka.free_port: ports a restarted server can bind again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools.localkafka import LOWEST_PORT, ephemeral_start, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    if ephemeral_start() <= LOWEST_PORT + 1000:
        pytest.skip("this machine's ephemeral range leaves no room below it")
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST_PORT <= port < ephemeral_start() for port in ports)
    assert len(ports) > 1  # chosen at random, not one fixed port
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_ephemeral_start_is_read_from_the_kernel_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t60999\n")
    assert ephemeral_start(setting) == 40000
    assert ephemeral_start(tmp_path / "missing") == 32768
