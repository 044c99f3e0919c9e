"""Where an order's CPU goes: the whole system under a fixed load, service by service.

``python -m bench --only profile`` starts the end-to-end stack (``bench.e2e.start``) and offers the same
constant rate of orders (``bench.loadgen``, open loop) three times: once to warm up (a new broker
spends more on compiling its code than on the orders), once measured (utime+stime from /proc per
process, nothing attached), and once under py-spy (``--gil``: only the thread holding the GIL is
sampled, i.e. Python running; SQLite and socket calls that release it are not in the samples, only
in the CPU figures). Per service it prints the CPU milliseconds per order and the share of its
samples per bucket (the innermost frame that names one). The collapsed stacks are kept in
``bench/results/profile/`` for flame graphs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.common import RESULTS, Report, order_json, say
from bench.e2e import GroupWatch, started_and_warm, wait_settled
from bench.loadgen import open_loop
from bench.procs import Proc, cpu_seconds
from devtools.localkafka import free_port
from orderflow.settings import KafkaSettings

SECTION = "10 profile: CPU per order by service and where it goes"
OUT = RESULTS / "profile"
# Frames a reader can act on, matched against "function (file)" in order; the first that matches wins.
BUCKETS = (
    ("logging", ("logging/", "pythonjsonlogger")),
    ("prometheus", ("prometheus_client",)),
    ("kafka-python produce", ("kafka/producer",)),
    ("kafka-python consume", ("kafka/consumer",)),
    ("kafka-python network", ("kafka/net", "kafka/client", "kafka/conn", "kafka/protocol", "kafka/record")),
    ("pydantic", ("pydantic",)),
    ("json", ("json/", "jsonbody")),
    ("database", ("sqlalchemy", "sqlite3", "alembic", "statestore", "orderflow/store")),
    ("smtp", ("smtplib", "email/", "mailer", "render")),
    ("flask/werkzeug", ("flask/", "werkzeug/", "flask_limiter", "limits/", "flask_cors", "spectree")),
    ("gunicorn", ("gunicorn/",)),
    ("rate limit", ("ratelimit",)),
)


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"  # the bench's own environment, on PATH or not
    exe = str(beside) if beside.exists() else shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is missing: pip install '.[bench]'")
    return exe


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` and its children (gunicorn workers) into collapsed stacks at ``out``."""
    return subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--subprocesses", "--duration",
                             str(int(seconds)), "--rate", "200", "--format", "raw", "--nonblocking", "--gil",
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def buckets(collapsed: Path) -> tuple[Counter[str], int]:
    """Samples per bucket (the innermost frame that names one; else 'our code and the rest'), and all samples."""
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        samples = int(n)
        total += samples
        frames = stack.split(";")
        for frame in reversed(frames):
            name = next((bucket for bucket, marks in BUCKETS if any(m in frame for m in marks)), None)
            if name:
                counts[name] += samples
                break
        else:
            counts["our code and the rest"] += samples
    return counts, total


def run(report: Report, base: KafkaSettings, work: Path, broker_pid: int, *, rate: int = 300,
        seconds: float = 20.0, with_order_id: bool = False) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    watch = GroupWatch(base.bootstrap_servers)
    smtp_port = free_port()
    tag = uuid.uuid4().hex[:8]
    report.facts["profile"] = (f"{rate} orders/s offered for {seconds:g} s, "
                               f"{'client' if with_order_id else 'server'}-made order ids; py-spy at 200 Hz")
    with Proc("bench.smtpsink", "--port", str(smtp_port), env={}, log=work / "smtpsink.log") as smtp:
        stack = started_and_warm(report, base, work, smtp_port, None, watch)
        try:
            pids = {**stack.pids(broker_pid), "smtp sink": smtp.pid}
            pids.pop("observer", None)

            def load(part: str) -> int:
                samples = open_loop("127.0.0.1", stack.port, rate=rate, seconds=seconds, body=lambda i: order_json(
                    f"prof-{i}", order_id=f"{tag}-{part}-{i}" if with_order_id else None))
                wait_settled(stack, watch)
                return sum(1 for s in samples if s.status == 201)

            # A broker just started spends more on compiling its own code (the JIT) than on the orders:
            # one load first, unmeasured. Then the CPU figures, with no sampler attached to anything.
            load("warm")
            before = cpu_seconds(pids.values())
            orders = load("cpu")
            used = {name: cpu_seconds([pid]).get(pid, 0.0) - before.get(pid, 0.0) for name, pid in pids.items()}
            # Last, where it goes: the same load again under py-spy.
            spies = {name: record(pid, seconds, OUT / f"{name}.txt") for name, pid in pids.items() if name != "broker"}
            load("spy")
            for spy in spies.values():
                spy.wait(timeout=seconds + 60)
            time.sleep(0.5)
        finally:
            stack.stop()
    watch.close()
    total_ms = 0.0
    for name, cpu in used.items():
        per_order = 1000 * cpu / max(orders, 1)
        if name != "smtp sink":
            total_ms += per_order
        row = report.row(SECTION, name, unit="ms/order")
        row.fig("rate").add(per_order)
        collapsed = OUT / f"{name}.txt"
        if collapsed.exists():
            counts, total = buckets(collapsed)
            row.note = ", ".join(f"{bucket} {100 * n / total:.0f}%" for bucket, n in counts.most_common(6) if total)
        say(f"profile {name}: {per_order:.2f} ms CPU per order; {row.note}")
    report.row(SECTION, "whole system (broker + services)", unit="ms/order").fig("rate").add(total_ms)
