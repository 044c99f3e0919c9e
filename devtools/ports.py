"""Ports of this machine: a free one for a server that may restart, and who holds a taken one."""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from devtools.brokerguard import cmdline

LOWEST_PORT = 20_000  # free_port() picks in [LOWEST_PORT, start of the ephemeral range)
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_ports = random.Random()  # its own generator, apart from the ``random`` module's shared state


def ephemeral_start(path: Path = EPHEMERAL_RANGE) -> int:
    """The first port of the range the kernel takes outgoing connections' local ports from."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(attempts: int = 50) -> int:
    """A TCP port free on 127.0.0.1 now, chosen at random below the ephemeral range.

    A port from the ephemeral range may be taken by some client's outgoing connection while its
    server is down (a broker being restarted) and then the server cannot bind it again; ports below
    that range are never handed out that way. The kernel's choice when none of those is free.
    """
    high = ephemeral_start()
    for _ in range(attempts if high > LOWEST_PORT else 0):
        port = _ports.randrange(LOWEST_PORT, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PortHolder:
    port: int
    pid: int | None  # None: a process of another user or namespace
    command: list[str]

    @property
    def kafka_data_dir(self) -> Path | None:
        """The data directory of a broker started as ``kafka.Kafka <dir>/server.properties`` (as ours are)."""
        if "kafka.Kafka" in self.command:
            props = self.command[self.command.index("kafka.Kafka") + 1:]
            if props:
                return Path(props[0]).parent
        return None

    def describe(self) -> str:
        if self.pid is None:
            return f"port {self.port} is held by a process this user cannot see"
        data = self.kafka_data_dir
        what = f"a Kafka broker with data in {data}" if data else " ".join(self.command)[:200] or "?"
        return f"port {self.port} is held by pid {self.pid} ({what})"


def _listening_inodes(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[str]:
    inodes = set()
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> PortHolder | None:
    """The process listening on TCP ``port`` of this machine, or None if none listens."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    return PortHolder(port, int(proc.name), cmdline(int(proc.name)))
            except OSError:
                continue
    return PortHolder(port, None, [])
