"""The history step: start-up, memory and lookups of the services over 10k, 100k (and 1M) orders of history.

Per history size: a history on fresh topics (``bench.history_build``: synthetic orders, the real
transactions_backend deciding them, outcomes written directly, email_backend's state built once, the
store built by the real projector from offset 0, which is timed). Then, per round, with the projector
left running:

* ``python -m orders_backend``: start -> first 200 from ``/healthz``; the first ``GET /order/<old id>``;
  ``WARM_UP`` lookups, then the RSS of the gunicorn master and its workers; ``LOOKUPS`` lookups of
  random ids of the history, one at a time over keep-alive connections: p50 and p99;
* transactions_backend, stopped: one new order posted to the API, then the service started, timed until
  its group has committed past that order (the verdict is written in the same Kafka transaction);
* ``python -m dashboard``: start -> ``/healthz``; -> first ``/api/state`` answered, logged in; -> an
  ``/api/state`` that lists orders; its RSS.

Last, the disk used by the store (SQLite file + WAL) and by the stages' state files.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from pathlib import Path

from werkzeug.security import generate_password_hash

from bench.common import Report, order_json, say
from bench.e2e import percentile
from bench.history_build import Built, build, wait_until
from bench.history_http import KeepAlive, logged_in, wait_ready
from bench.procs import GroupWatch, Proc, end_offsets, rss_bytes
from devtools.localkafka import free_port
from orderflow.kafka import ensure_topics, make_admin
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS, TRANSACTIONS_GROUP, pipeline_topics

HISTORY = "8 history (start-up, memory and lookups over the orders kept)"
SIZES = (10_000, 100_000)
WARM_UP = 100
LOOKUPS = 500
OPERATOR, PASSWORD = "operator", "bench-operator-password"
MB = 1024 * 1024
STUCK_JOIN = b"no partitions for"  # the stage loop's warning before it joins its group again

# The rows, one per figure; each holds one value list per history size (key: the size).
STORE_SECONDS = "order store built from offset 0 (projector start -> every offset stored)"
STORE_RATE = "order store build rate (orders + verdicts + outcomes)"
API_READY = "orders API ready (start -> /healthz 200)"
API_RSS = "orders API RSS (gunicorn master + workers, after warm-up)"
FIRST_GET = "first GET /order/<old id> after ready"
GET_P50 = f"GET /order/<old id> p50 ({LOOKUPS} random ids, keep-alive)"
GET_P99 = f"GET /order/<old id> p99 ({LOOKUPS} random ids, keep-alive)"
TX_VERDICT = "transactions_backend start -> verdict of a new order committed"
DASH_READY = "dashboard ready (start -> /healthz 200)"
DASH_STATE = "dashboard start -> first /api/state, logged in"
DASH_LISTED = "dashboard start -> /api/state lists orders"
DASH_RSS = "dashboard RSS"
STORE_DISK = "order store on disk (SQLite file + WAL)"
STATE_DISK = "stages' state files on disk (transactions + email, file + WAL)"
UNITS = {STORE_SECONDS: "s", STORE_RATE: "rec/s", API_READY: "s", API_RSS: "MB", FIRST_GET: "ms", GET_P50: "ms",
         GET_P99: "ms", TX_VERDICT: "s", DASH_READY: "s", DASH_STATE: "s", DASH_LISTED: "s", DASH_RSS: "MB",
         STORE_DISK: "MB", STATE_DISK: "MB"}

ROUND_SUMMARY = {API_READY: "API ready s", API_RSS: "API RSS MB", GET_P99: "GET p99 ms",
                 TX_VERDICT: "transactions start->verdict s", DASH_LISTED: "dashboard start->orders listed s"}


def parse_sizes(text: str) -> list[int]:
    return sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()})


def disk_bytes(path: Path) -> int:
    """A SQLite file and its write-ahead log."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


class Figures:
    """The history section's rows in the report, one value list per size."""

    def __init__(self, report: Report, n: int) -> None:
        self.report = report
        self.key = str(n)
        for name, unit in UNITS.items():
            report.row(HISTORY, name, unit=unit)

    def add(self, name: str, value: float | None) -> None:
        self.report.row(HISTORY, name).fig(self.key).add(value)


def api_round(built: Built, work: Path, figures: Figures, watch: GroupWatch, r: int, stuck: list[str]) -> None:
    port = free_port()
    rng = random.Random(built.n * 1000 + r)
    ids = [built.history.order_id(rng.randrange(built.n)) for _ in range(1 + WARM_UP + LOOKUPS)]
    with Proc("orders_backend", env=built.env(ORDERS_HOST="127.0.0.1", ORDERS_PORT=str(port)),
              log=work / f"history-{built.n}-orders_backend.log") as api:
        figures.add(API_READY, wait_ready(f"http://127.0.0.1:{port}/healthz", api))
        client = KeepAlive(port)
        try:
            answers = [client.request("GET", f"/order/{order_id}") for order_id in ids]
            if any(status != 200 for status, _, _ in answers):
                raise RuntimeError(f"old orders not found: {sorted({s for s, _, _ in answers})}; see {api.log}")
            figures.add(FIRST_GET, 1000 * answers[0][2])
            lookups = [1000 * seconds for _, _, seconds in answers[1 + WARM_UP:]]
            figures.add(GET_P50, percentile(lookups, 50))
            figures.add(GET_P99, percentile(lookups, 99))
            # Memory after the warm-up and the lookups: every worker has served and read the store.
            figures.add(API_RSS, rss_bytes(api.pid) / MB)
            figures.add(TX_VERDICT, restart_to_verdict(built, work, client, watch, r, stuck))
        finally:
            client.close()


def restart_to_verdict(built: Built, work: Path, client: KeepAlive, watch: GroupWatch, r: int,
                       stuck: list[str]) -> float:
    """transactions_backend is stopped: post an order, start it, seconds until it committed past that order."""
    s = built.settings
    status, body, _ = client.request("POST", "/order", order_json(f"history-new-{r}"),
                                     {"Content-Type": "application/json"})
    if status != 201:
        raise RuntimeError(f"the new order was answered {status}: {body[:300]!r}")
    order_id = json.loads(body)["order_id"]
    ends = end_offsets(s, s.topic(ORDER_DETAILS))
    group, topic = s.group(TRANSACTIONS_GROUP), s.topic(ORDER_DETAILS)
    log = work / f"history-{built.n}-transactions_backend.log"
    logged_before = log.stat().st_size
    with Proc("transactions_backend", env=built.env(), log=log) as tx:
        def past() -> bool:
            done = watch.committed(group, topic)
            return all(done.get(p, 0) >= end for p, end in ends.items())
        seconds = wait_until(past, tx, 120, "committed past the new order", interval=0.05)
    with open(log, "rb") as f:
        f.seek(logged_before)
        if STUCK_JOIN in f.read():  # kafka-python joined before it had the topic's metadata (bench/README.md)
            stuck.append(f"transactions_backend over {built.n} orders, round {r + 1}: owned no partition at first, "
                         f"joined again; start -> verdict {seconds:.1f}s")
            say(f"warning: {stuck[-1]}")
    status, body, _ = client.request("GET", f"/order/{order_id}?wait=5&until=decided")
    if status != 200 or json.loads(body)["status"] not in ("confirmed", "rejected"):
        raise RuntimeError(f"order {order_id} not decided after its group's commit: {status} {body[:300]!r}")
    return seconds


def dashboard_round(built: Built, work: Path, figures: Figures, password_hash: str) -> None:
    port = free_port()
    env = built.env(DASHBOARD_HOST="127.0.0.1", DASHBOARD_PORT=str(port), DASHBOARD_OPERATOR=OPERATOR,
                    DASHBOARD_OPERATOR_PASSWORD_HASH=password_hash, DASHBOARD_SECRET_KEY=secrets.token_hex(32),
                    DASHBOARD_COOKIE_SECURE="false")
    with Proc("dashboard", env=env, log=work / f"history-{built.n}-dashboard.log") as dash:
        figures.add(DASH_READY, wait_ready(f"http://127.0.0.1:{port}/healthz", dash))
        session = logged_in(port, OPERATOR, PASSWORD)
        first = None
        deadline = time.monotonic() + 60
        while True:
            state = json.loads(session.open(f"http://127.0.0.1:{port}/api/state", timeout=30).read())
            now = time.monotonic() - dash.started
            first = now if first is None else first
            if state.get("order_ids"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dashboard lists no order after 60 s; see {dash.log}")
            time.sleep(0.05)
        figures.add(DASH_STATE, first)
        figures.add(DASH_LISTED, now)
        figures.add(DASH_RSS, rss_bytes(dash.pid) / MB)


def forget(built: Built) -> None:
    """The size's topics and files go once measured: the next size starts on a quiet broker and disk."""
    for path in [built.store_path, *built.state_files()]:
        for side in ("", "-wal", "-shm"):
            path.with_name(path.name + side).unlink(missing_ok=True)
    admin = make_admin(built.settings)
    try:
        admin.delete_topics([t.name for t in pipeline_topics(built.settings.partitions, built.settings.topic_prefix)])
    except Exception as exc:  # noqa: BLE001 - the broker is thrown away at the end anyway
        say(f"warning: the topics of history {built.n} were not deleted: {exc}")
    finally:
        admin.close()


def run(report: Report, base: KafkaSettings, work: Path, *, rounds: int, sizes: list[int]) -> None:
    watch = GroupWatch(base.bootstrap_servers)
    smtp_port = free_port()
    password_hash = generate_password_hash(PASSWORD)
    stuck: list[str] = report.facts.setdefault("stuck_starts", [])
    report.facts["history"] = {"sizes": sizes, "rounds": rounds, "warm_up": WARM_UP, "lookups": LOOKUPS,
                               "build_seconds": {}, "wall_seconds": {}}
    with Proc("bench.smtpsink", "--port", str(smtp_port), env={}, log=work / "history-smtpsink.log"):
        for n in sizes:
            began = time.monotonic()
            settings = base.model_copy(update={"topic_prefix": f"h{secrets.token_hex(3)}-{n}.", "replica_id": "bench"})
            ensure_topics(settings)
            say(f"history {n}: building it")
            built = build(settings, work, n, watch=watch, smtp_port=smtp_port)
            figures = Figures(report, n)
            try:
                figures.add(STORE_SECONDS, built.store_seconds)
                figures.add(STORE_RATE, built.store_records / built.store_seconds)
                for r in range(rounds):
                    api_round(built, work, figures, watch, r, stuck)
                    dashboard_round(built, work, figures, password_hash)
                    say(f"history {n} round {r + 1}: " + ", ".join(
                        f"{label} {report.rows[f'{HISTORY}/{name}'].figures[str(n)].values[-1]:.3g}"
                        for name, label in ROUND_SUMMARY.items()))
                figures.add(STORE_DISK, disk_bytes(built.store_path) / MB)
                figures.add(STATE_DISK, sum(disk_bytes(p) for p in built.state_files()) / MB)
            finally:
                built.projector.stop()
            forget(built)
            facts = report.facts["history"]
            facts["build_seconds"][str(n)] = {k: round(v, 1) for k, v in built.seconds.items()}
            facts["wall_seconds"][str(n)] = round(time.monotonic() - began, 1)
            say(f"history {n}: done in {facts['wall_seconds'][str(n)]:.0f}s")
    watch.close()
