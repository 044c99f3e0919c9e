"""The HTTP ladder: the same wrk load on four (five) endpoints, each adding one layer of the real one.

Each rung runs under gunicorn with the real ``orders_backend/gunicorn_conf.py`` and only the worker
class, worker and thread counts changed on the command line. Every request carries a new user_id
(and, for the last rung, a new order_id), so the real endpoint never sees a repeat.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from bench.common import ROOT, Report, Row, say
from bench.procs import Proc, service_env
from devtools.localkafka import free_port
from orderflow.settings import KafkaSettings

LUA = ROOT / "bench" / "post.lua"
GUNICORN_CONF = ROOT / "orders_backend" / "gunicorn_conf.py"
SECTION = "3 HTTP ladder"

# (rung, gunicorn app, order_id in the body)
RUNGS = {
    "bare": ('bench.ladder_app:create_app("bare")', False),
    "validate": ('bench.ladder_app:create_app("validate")', False),
    "publish, no wait": ('bench.ladder_app:create_app("nowait")', False),
    "publish, wait for ack (real API)": ("orders_backend.wsgi:app", False),
    "real API, client order_id (dedup check)": ("orders_backend.wsgi:app", True),
}
RUNG_ORDER = list(RUNGS)
TOP = "publish, wait for ack (real API)"


def wrk(url: str, *, seconds: float, connections: int, tag: str, with_order_id: bool,
        seed_shape: bool = False) -> dict[str, float]:
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is missing: run scripts/ensure-bench-tools.sh")
    done = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                           "-s", str(LUA), url, "--", tag, "1" if with_order_id else "0",
                           *(["seed"] if seed_shape else [])],
                          capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures: {done.stdout[-800:]} {done.stderr[-800:]}")
    figures = json.loads(line.removeprefix("BENCHJSON "))
    figures["rate"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["errors"] = sum(figures[k] for k in ("non2xx", "connect_err", "read_err", "write_err", "timeouts"))
    return figures


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


def gunicorn(app: str, settings: KafkaSettings, port: int, log: Path, *, worker_class: str, workers: int,
             threads: int, env: dict[str, str] | None = None, patched: bool = False) -> Proc:
    """gunicorn with the API's config file; ``patched``: under ``bench.patched`` (tuning knobs from ``env``)."""
    launcher = ["bench.patched", "gunicorn"] if patched else ["gunicorn"]
    proc = Proc(*launcher, "-c", str(GUNICORN_CONF), "--worker-class", worker_class, "--workers", str(workers),
                "--threads", str(threads), app,
                env={**service_env(settings), "ORDERS_HOST": "127.0.0.1", "ORDERS_PORT": str(port), **(env or {})},
                log=log)
    wait_port(port)
    return proc


def config_name(worker_class: str, workers: int, threads: int) -> str:
    return f"{worker_class} {workers}x{threads}" if worker_class == "gthread" else f"{worker_class} x{workers}"


def measure(row: Row, base: KafkaSettings, work: Path, rung: str, *, rounds: int, seconds: float, connections: int,
            config: tuple[str, int, int], env: dict[str, str] | None = None, patched: bool = False) -> None:
    """One gunicorn (fresh topics), a 1 s warm-up, then ``rounds`` wrk runs into ``row``."""
    app, with_id = RUNGS[rung]
    worker_class, workers, threads = config
    settings = base.model_copy(update={"topic_prefix": f"h{uuid.uuid4().hex[:6]}.", "replica_id": "bench"})
    port = free_port()
    with gunicorn(app, settings, port, work / "gunicorn.log", worker_class=worker_class, workers=workers,
                  threads=threads, env=env, patched=patched):
        url = f"http://127.0.0.1:{port}/order"
        wrk(url, seconds=1, connections=connections, tag=f"warm{uuid.uuid4().hex[:6]}", with_order_id=with_id)
        for _ in range(rounds):
            f = wrk(url, seconds=seconds, connections=connections, tag=uuid.uuid4().hex[:8], with_order_id=with_id)
            row.fig("rate").add(f["rate"])
            row.fig("p50_ms").add(f["p50_us"] / 1000)
            row.fig("p99_ms").add(f["p99_us"] / 1000)
            row.fig("errors").add(f["errors"])


def run(report: Report, base: KafkaSettings, work: Path, *, rounds: int, seconds: float, connections: int,
        configs: list[tuple[str, int, int]], full_ladder_for: int = 0) -> None:
    """Full ladder for ``configs[full_ladder_for]``; bare and real rungs only for the other configs."""
    report.facts["http_load"] = f"wrk -t1 -c{connections}, {seconds:g} s per round, 1 s warm-up"
    for i, config in enumerate(configs):
        cfg = config_name(*config)
        section = f"{SECTION} ({cfg})"
        for rung in RUNG_ORDER if i == full_ladder_for else ["bare", TOP]:
            row = report.row(section, rung, unit="req/s", ratio_to=f"{section}/bare")
            measure(row, base, work, rung, rounds=rounds, seconds=seconds, connections=connections, config=config)
            say(f"http {cfg} {rung}: {row.median():.0f} req/s, p99 {row.median('p99_ms'):.1f} ms")
