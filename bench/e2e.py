"""End to end and CPU per order: the whole system as processes, from ``POST /order`` to ``analytics_result``.

Per round: fresh topics; ``python -m orders_backend`` (gunicorn, shipped config), the three consumer
services, a counting SMTP server and ``bench.observe`` (notes every committed analytics snapshot).
Then three loads, one after the other, each waited out until every order is counted:
200 and 500 orders/s offered at a constant rate (``bench.loadgen``, open loop) and saturation (wrk).

Latency POST -> counted, per order: the verdict of each order is found in ``order_confirmed`` by its
user_id (each request has its own) -> (partition, offset); the order is counted by the first
analytics snapshot of that partition whose ``as_of_offset`` is past that offset, at the snapshot's
record timestamp (written by analytics_backend just before its transaction commits). The POST time
is when the generator was due to send it (open loop), or the order's server-set ``time`` under wrk.
"""

from __future__ import annotations

import bisect
import json
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.common import Report, order_json, say
from bench.http_ladder import GUNICORN_CONF, wrk
from bench.loadgen import open_loop
from bench.procs import GroupWatch, Proc, cpu_seconds, end_offsets, service_env
from devtools.localkafka import free_port
from orderflow.kafka import ensure_topics, read_topic
from orderflow.settings import KafkaSettings
from orderflow.topics import EMAIL_GROUP, ORDER_CONFIRMED, ORDER_DETAILS

SECTION = "5 end to end (POST /order -> counted in analytics_result)"
CPU = "6 CPU per order (utime+stime, whole system)"
SYSTEM = ("broker", "orders_backend", "transactions_backend", "email_backend", "analytics_backend", "order_projector")


@dataclass
class Stack:
    settings: KafkaSettings
    port: int
    snapshots: Path
    procs: dict[str, Proc] = field(default_factory=dict)

    def pids(self, broker_pid: int) -> dict[str, int]:
        return {"broker": broker_pid, **{name: p.pid for name, p in self.procs.items()}}

    @property
    def emails(self) -> bool:
        return "email_backend" in self.procs

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


def start(base: KafkaSettings, work: Path, smtp_port: int, api_env: dict[str, str] | None = None,
          without: tuple[str, ...] = ()) -> Stack:
    """The whole system on fresh topics; the API as ``python -m orders_backend`` would run it (its gunicorn
    config, unchanged), under ``bench.patched`` with ``api_env`` when a tuning knob is given."""
    settings = base.model_copy(update={"topic_prefix": f"e{uuid.uuid4().hex[:6]}.", "replica_id": "bench"})
    ensure_topics(settings)
    stack = Stack(settings, free_port(), work / f"snapshots-{settings.topic_prefix}txt")
    env = service_env(settings, ORDERS_HOST="127.0.0.1", ORDERS_PORT=str(stack.port), EMAIL_SMTP_HOST="127.0.0.1",
                      EMAIL_SMTP_PORT=str(smtp_port),
                      STORE_DATABASE_URL=f"sqlite:///{work / f'store-{settings.topic_prefix}sqlite3'}")
    api = ["gunicorn", "-c", str(GUNICORN_CONF), "orders_backend.wsgi:app"]
    stack.procs["orders_backend"] = Proc(*(["bench.patched", *api] if api_env else api), env={**env, **(api_env or {})},
                                         log=work / "e2e-orders_backend.log")
    for module in SYSTEM[2:]:
        if module not in without:
            stack.procs[module] = Proc(module, env=env, log=work / f"e2e-{module}.log")
    stack.procs["observer"] = Proc("bench.observe", "--out", str(stack.snapshots), env=env, log=work / "observe.log")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("orders API not healthy after 60 s")
        time.sleep(0.3)
    return stack


def snapshots(path: Path) -> dict[int, list[tuple[int, int, int]]]:
    """partition -> [(as_of_offset, timestamp_ms, orders folded)] in the order written."""
    out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            p, as_of, ts, n = (int(x) for x in line.split())
            out[p].append((as_of, ts, n))
    return out


def wait_settled(stack: Stack, watch: GroupWatch, timeout: float = 180, email: bool = True) -> None:
    """Every order in order_details counted by analytics and, with ``email``, read by email_backend."""
    s = stack.settings
    expected = sum(end_offsets(s, s.topic(ORDER_DETAILS)).values())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snaps = snapshots(stack.snapshots)
        counted = sum(entries[-1][2] for entries in snaps.values())
        if counted >= expected:
            if not email or not stack.emails:
                return
            done = watch.committed(s.group(EMAIL_GROUP), s.topic(ORDER_CONFIRMED))
            if all(done.get(p, 0) >= entries[-1][0] for p, entries in snaps.items()):
                return
        time.sleep(0.2)
    raise TimeoutError(f"not settled after {timeout}s (expected {expected} orders)")


@dataclass
class Order:
    user_id: str
    server_time: float
    confirmed_ts: float
    counted_ts: float | None


def orders(stack: Stack) -> dict[str, Order]:
    """Every verdict of the round, with when it was written and when analytics counted it."""
    snaps = snapshots(stack.snapshots)
    index = {p: ([a for a, _, _ in e], [t for _, t, _ in e]) for p, e in snaps.items()}
    out = {}
    for r in read_topic(stack.settings, stack.settings.topic(ORDER_CONFIRMED), timeout=120):
        if r.value is None:
            continue
        order = json.loads(r.value)["order"]
        as_ofs, stamps = index.get(r.partition, ([], []))
        i = bisect.bisect_right(as_ofs, r.offset)
        counted = stamps[i] / 1000 if i < len(stamps) else None
        out[order["user_id"]] = Order(order["user_id"], datetime.fromisoformat(order["time"]).timestamp(),
                                      r.timestamp_ms / 1000, counted)
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def record_level(report: Report, name: str, posted: dict[str, float], found: dict[str, Order], *,
                 http: dict[str, float], cpu: dict[str, float] | None) -> None:
    row = report.row(SECTION, name, unit="orders/s")
    mine = [(found[u], t) for u, t in posted.items() if u in found]
    counted = [(o, t) for o, t in mine if o.counted_ts is not None]
    lat = [1000 * (o.counted_ts - t) for o, t in counted if o.counted_ts is not None]
    conf = [1000 * (o.confirmed_ts - t) for o, t in mine]
    if counted:
        span = max(o.counted_ts for o, _ in counted if o.counted_ts) - min(t for _, t in counted)
        row.fig("rate").add(len(counted) / span if span > 0 else None)
    row.fig("p50_ms").add(percentile(lat, 50))
    row.fig("p99_ms").add(percentile(lat, 99))
    row.fig("confirmed_p99_ms").add(percentile(conf, 99))
    for key, value in http.items():
        row.fig(key).add(value)
    row.fig("lost").add(len(posted) - len(counted))
    if cpu is not None and counted:
        system = sum(cpu.get(k, 0.0) for k in SYSTEM)
        report.row(CPU, f"{name}: whole system", unit="ms/order",
                   note="broker + orders API (all workers) + 3 stages + the projector"
                   ).fig("rate").add(1000 * system / len(counted))
        for key, used in cpu.items():
            report.row(CPU, f"{name}: {key}", unit="ms/order").fig("rate").add(1000 * used / len(counted))


def started_and_warm(report: Report, base: KafkaSettings, work: Path, smtp_port: int,
                     api_env: dict[str, str] | None, watch: GroupWatch, without: tuple[str, ...] = ()) -> Stack:
    """A stack that has counted and emailed 50 warm-up orders; one restart if it does not in 60 s
    (kafka-python can join a group before it knows the topic and then own no partition)."""
    for attempt in (1, 2):
        stack = start(base, work, smtp_port, api_env, without)
        try:
            warm = open_loop("127.0.0.1", stack.port, rate=50, seconds=1, body=lambda i: order_json(f"warm-{i}"))
            if not all(s.status == 201 for s in warm):
                raise RuntimeError(f"warm-up orders refused: {sorted({s.status for s in warm})}")
            wait_settled(stack, watch, timeout=60)
            return stack
        except TimeoutError as exc:
            stack.stop()
            report.facts.setdefault("stuck_starts", []).append(f"e2e stack: {exc} (attempt {attempt})")
            say(f"warning: e2e stack did not settle the warm-up ({exc}); {'restarting' if attempt == 1 else ''}")
            if attempt == 2:
                raise
        except BaseException:
            stack.stop()
            raise
    raise AssertionError("unreachable")


def run(report: Report, base: KafkaSettings, work: Path, broker_pid: int, *, rounds: int, seconds: float,
        rates: tuple[int, ...] = (200, 500), saturation: bool = True, connections: int = 16,
        api_env: dict[str, str] | None = None, label: str = "", without: tuple[str, ...] = ()) -> None:
    watch = GroupWatch(base.bootstrap_servers)
    smtp_port = free_port()
    report.facts["e2e"] = f"{seconds:g} s per load level; saturation: wrk -t1 -c{connections}"
    with Proc("bench.smtpsink", "--port", str(smtp_port), env={}, log=work / "smtpsink.log") as smtp:
        for r in range(rounds):
            stack = started_and_warm(report, base, work, smtp_port, api_env, watch, without)
            try:
                posted: dict[str, dict[str, float]] = {}
                http: dict[str, dict[str, float]] = {}
                cpus: dict[str, dict[str, float] | None] = {}
                for rate in rates:
                    level = f"{rate} orders/s offered{label}"
                    pids = {**stack.pids(broker_pid), "smtp sink": smtp.pid}
                    before = cpu_seconds(pids.values())
                    tag = f"r{r}-L{rate}"
                    samples = open_loop("127.0.0.1", stack.port, rate=rate, seconds=seconds,
                                        body=lambda i, tag=tag: order_json(f"{tag}-{i}"))
                    ok = [s for s in samples if s.status == 201]
                    posted[level] = {f"{tag}-{s.index}": s.due_wall for s in ok}
                    lat = [1000 * s.latency_s for s in ok]
                    http[level] = {"offered": rate, "http_rate": len(ok) / seconds, "http_p50_ms": percentile(lat, 50),
                                   "http_p99_ms": percentile(lat, 99), "errors": len(samples) - len(ok)}
                    wait_settled(stack, watch)
                    after = cpu_seconds(pids.values())
                    cpus[level] = {k: after.get(pid, 0.0) - before.get(pid, 0.0) for k, pid in pids.items()}
                    statuses = sorted({s.error or str(s.status) for s in samples if s.status != 201})
                    say(f"e2e round {r + 1} {level}: {len(ok)}/{len(samples)} accepted"
                        f"{f' (others: {statuses})' if statuses else ''}, http p99 {http[level]['http_p99_ms']:.1f} ms")
                if saturation:
                    level = f"saturation (wrk -c{connections}){label}"
                    tag = f"r{r}-sat"
                    before_n = sum(end_offsets(stack.settings, stack.settings.topic(ORDER_DETAILS)).values())
                    f = wrk(f"http://127.0.0.1:{stack.port}/order", seconds=seconds, connections=connections,
                            tag=tag, with_order_id=False)
                    http[level] = {"http_rate": f["rate"], "http_p50_ms": f["p50_us"] / 1000,
                                   "http_p99_ms": f["p99_us"] / 1000, "errors": f["errors"]}
                    wait_settled(stack, watch, email=False, timeout=300)
                    after_n = sum(end_offsets(stack.settings, stack.settings.topic(ORDER_DETAILS)).values())
                    say(f"e2e round {r + 1} {level}: {after_n - before_n} accepted at {f['rate']:.0f} req/s")
                    cpus[level] = None
                found = orders(stack)
                if saturation:
                    posted[level] = {u: o.server_time for u, o in found.items() if u.startswith(f"{tag}-")}
                for name, times in posted.items():
                    record_level(report, name, times, found, http=http[name], cpu=cpus[name])
                    row = report.rows[f"{SECTION}/{name}"]
                    say(f"e2e round {r + 1} {name}: {row.figures['rate'].values[-1]:.0f} orders/s counted, "
                        f"p99 POST->counted {row.figures['p99_ms'].values[-1]:.0f} ms")
            finally:
                stack.stop()
    watch.close()
