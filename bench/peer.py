"""The peer row: this pipeline against the naive tutorial one it replaces, on the same broker and load.

Rounds interleave the two. Each gets fresh topics, its API under the shipped gunicorn config
(``orders_backend/gunicorn_conf.py``: gthread, the same workers and threads), its three stages, and the
same ``wrk -t1 -c16`` load of seed-shaped orders (user_id, order_id, user_email, order_details with a
price) for the same time. Measured, per pipeline:

* sustained counted rate: orders counted by its analytics / (last one counted - load start);
* counted == accepted: every 2xx order counted once (ours: the analytics snapshots' counts; the
  tutorial's: the last ``total_orders_count`` it sent);
* CPU per counted order: broker, API (master and workers) and the three stages, from /proc.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from bench.common import Report, say
from bench.e2e import GroupWatch, snapshots, started_and_warm, wait_settled
from bench.http_ladder import GUNICORN_CONF, wait_port, wrk
from bench.procs import Proc, cpu_seconds, end_offsets, service_env
from devtools.localkafka import free_port
from orderflow.kafka import ensure_topics, read_topic
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_DETAILS, TopicSpec, pipeline_topics

SECTION = "7 peer: the naive tutorial pipeline, same broker, load and gunicorn config"
STAGES = ("transactions", "email", "analytics")


def tutorial_counted(settings: KafkaSettings) -> tuple[int, float]:
    """(orders counted, when the last of them was counted): the tutorial's last ``analytics_result``
    record holds its running count, so only that record is read."""
    topic = settings.topic(ANALYTICS_RESULT)
    ends = end_offsets(settings, topic)
    start = {p: end - 1 for p, end in ends.items() if end}
    best, at = 0, 0.0
    for r in read_topic(settings, topic, partitions=list(start), start=start, timeout=60):
        count = json.loads(r.value or b"{}").get("total_orders_count", 0)
        if count > best:
            best, at = count, r.timestamp_ms / 1000
    return best, at


def tutorial_topics(settings: KafkaSettings) -> list[TopicSpec]:
    """Plain topics, as the tutorial's broker makes them: its keyless totals are refused by our
    compacted ``analytics_result``. The same partition counts as ours."""
    specs = pipeline_topics(settings.partitions, settings.topic_prefix)
    return [TopicSpec(spec.name, spec.partitions) for spec in specs]


def run_tutorial(base: KafkaSettings, work: Path, broker_pid: int, seconds: float, connections: int,
                 tag: str) -> dict[str, float]:
    settings = base.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:6]}."})
    ensure_topics(settings, tutorial_topics(settings))
    port = free_port()
    env = service_env(settings, ORDERS_HOST="127.0.0.1", ORDERS_PORT=str(port))
    procs = {f"tutorial {s}": Proc("bench.tutorial_baseline.stages", s, env=env, log=work / f"tutorial-{s}.log")
             for s in STAGES}
    procs["tutorial API"] = Proc("gunicorn", "-c", str(GUNICORN_CONF), "bench.tutorial_baseline.app:app", env=env,
                                 log=work / "tutorial-api.log")
    try:
        wait_port(port)
        time.sleep(3)  # its consumers start at the end of their topics: let them be assigned first
        pids = {"broker": broker_pid, **{name: p.pid for name, p in procs.items()}}
        before, started = cpu_seconds(pids.values()), time.time()
        figures = wrk(f"http://127.0.0.1:{port}/order", seconds=seconds, connections=connections, tag=tag,
                      with_order_id=True, seed_shape=True)
        # what reached order_details (its sends are not waited for, so a moment later): wrk does not
        # count the requests its stop cut short
        time.sleep(1)
        accepted = sum(end_offsets(settings, settings.topic(ORDER_DETAILS)).values())
        deadline = time.monotonic() + 120
        counted, at = tutorial_counted(settings)
        while counted < accepted and time.monotonic() < deadline:
            time.sleep(1)
            counted, at = tutorial_counted(settings)
        used = sum(v for k, v in cpu_seconds(pids.values()).items()) - sum(before.values())
        return {"rate": counted / (at - started) if at > started else 0.0, "accepted": accepted,
                "counted": counted, "cpu_ms_per_rec": 1000 * used / max(counted, 1), "http_rate": figures["rate"]}
    finally:
        for proc in procs.values():
            proc.stop()


def run_ours(report: Report, base: KafkaSettings, work: Path, broker_pid: int, seconds: float, connections: int,
             tag: str, smtp_port: int, watch: GroupWatch) -> dict[str, float]:
    stack = started_and_warm(report, base, work, smtp_port, None, watch)
    try:
        pids = stack.pids(broker_pid)
        before_n = sum(end_offsets(stack.settings, stack.settings.topic(ORDER_DETAILS)).values())
        counted_before = sum(e[-1][2] for e in snapshots(stack.snapshots).values())
        before, started = cpu_seconds(pids.values()), time.time()
        figures = wrk(f"http://127.0.0.1:{stack.port}/order", seconds=seconds, connections=connections, tag=tag,
                      with_order_id=True, seed_shape=True)
        wait_settled(stack, watch, timeout=300)
        used = sum(cpu_seconds(pids.values()).values()) - sum(before.values())
        accepted = sum(end_offsets(stack.settings, stack.settings.topic(ORDER_DETAILS)).values()) - before_n
        snaps = snapshots(stack.snapshots)
        counted = sum(e[-1][2] for e in snaps.values()) - counted_before
        last = max(ts for entries in snaps.values() for _, ts, _ in entries) / 1000
        return {"rate": counted / (last - started), "accepted": accepted, "counted": counted,
                "cpu_ms_per_rec": 1000 * used / max(counted, 1), "http_rate": figures["rate"]}
    finally:
        stack.stop()


def run(report: Report, base: KafkaSettings, work: Path, broker_pid: int, *, rounds: int, seconds: float,
        connections: int = 16) -> None:
    watch = GroupWatch(base.bootstrap_servers)
    smtp_port = free_port()
    report.facts["peer"] = f"wrk -t1 -c{connections}, {seconds:g} s, seed-shaped orders with order_id, interleaved"
    with Proc("bench.smtpsink", "--port", str(smtp_port), env={}, log=work / "smtpsink.log"):
        for r in range(rounds):
            for name in ("this pipeline", "tutorial pipeline") if r % 2 == 0 else ("tutorial pipeline",
                                                                                    "this pipeline"):
                tag = f"p{r}-{name[:4]}"
                if name == "this pipeline":
                    got = run_ours(report, base, work, broker_pid, seconds, connections, tag, smtp_port, watch)
                else:
                    got = run_tutorial(base, work, broker_pid, seconds, connections, tag)
                ratio_to = f"{SECTION}/tutorial pipeline" if name == "this pipeline" else None
                row = report.row(SECTION, name, unit="orders/s", ratio_to=ratio_to,
                                 note="counted per second, sustained; ratio: over the tutorial's")
                for key, value in got.items():
                    row.fig(key).add(value)
                row.fig("lost").add(got["accepted"] - got["counted"])
                say(f"peer round {r + 1} {name}: {got['rate']:.0f} orders/s counted ({got['counted']:.0f} of "
                    f"{got['accepted']:.0f} accepted), {got['cpu_ms_per_rec']:.2f} ms CPU per order")
    ours, theirs = (report.rows.get(f"{SECTION}/{n}") for n in ("this pipeline", "tutorial pipeline"))
    if ours and theirs:
        mine, peer = ours.median(), theirs.median()
        if mine and peer:
            report.facts["peer_ratio"] = round(mine / peer, 2)
    watch.close()
