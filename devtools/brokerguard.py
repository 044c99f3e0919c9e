"""What ties a local broker to the stack that started it.

* ``die_with_parent``: the kernel signals the broker when the process that started it dies, even by
  SIGKILL (Linux ``PR_SET_PDEATHSIG``), so a killed ``make run`` leaves no broker behind.
* ``PidFile``: the broker's pid beside its data, so the next start on that data stops a broker an
  earlier start left running (a parent-death signal is lost if the starting thread ends first).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc: ctypes.CDLL | None = None


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent: the child between fork and exec must not load libraries."""
    global _libc
    if not os.path.exists("/proc/self"):  # not Linux
        return None
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = _libc.prctl
    return prctl


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when this process's thread that
    starts it ends; None where the kernel has no such signal. Kept across ``exec`` (not setuid)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec



def end_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent ends, even by SIGKILL: ``make run``
    killed takes the stack it started down with it."""
    prctl = _prctl()
    if prctl is None:
        return
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the signal was armed
        os.kill(os.getpid(), sig)

def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid`` (not necessarily our child), SIGKILL it after ``timeout``, wait until it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.1)


class PidFile:
    """``<data>/broker.pid``: which process runs the broker of this data directory."""

    def __init__(self, data_dir: Path, marker: str) -> None:
        self.path = data_dir / "broker.pid"
        self.marker = marker  # an argument only this data directory's broker is started with

    def write(self, pid: int) -> None:
        self.path.write_text(f"{pid}\n")

    def running(self) -> int | None:
        """The pid of a broker of this data directory still running, if any."""
        try:
            pid = int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) and self.marker in cmdline(pid) else None

    def stop_leftover(self, timeout: float = 30.0) -> None:
        """Stop the broker an earlier start on this data left running (its stack died without stopping it)."""
        pid = self.running()
        if pid is not None and pid != os.getpid():
            log.warning("stopping the broker an earlier start left running on %s (pid %d)", self.path.parent, pid)
            terminate(pid, timeout)
        self.path.unlink(missing_ok=True)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def hold(start: Callable[[], object], running: Callable[[], bool], stop: Callable[[], object],
         announce: Callable[[], None]) -> int:
    """Run brokers in the foreground: ``start`` them, ``announce`` it, and wait until SIGTERM or SIGINT
    (exit status 0) or until ``running()`` turns false, a broker having died (1); ``stop`` them either way."""
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    start()
    announce()
    try:
        while not stopping and running():
            time.sleep(0.5)
    finally:
        stop()
    return 0 if stopping else 1
