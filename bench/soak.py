"""Broker SIGKILL soak: the whole system under a steady load while its broker is killed and restarted.

The step has a broker of its own (it kills it): one KRaft node on free ports, restarted after each
SIGKILL on the same data folder and ports. On it: the API as ``python -m orders_backend`` runs it,
the three stages (exactly-once) and an SMTP sink that notes each email's ``X-Order-Id``. Clients
post orders at a steady rate, each with its own ``order_id``, and post an order that was not
answered 2xx again with the same ``order_id`` until it is, as a client told to retry does.

Per kill: how long the broker was down; when it accepted writes again, which a fresh producer finds
out by writing an order of its own straight to ``order_details`` until one is acknowledged; the time
from then to the API's first 2xx; how fast the API answered 503 meanwhile; and when that order had
gone through every stage (decided, then read and committed by the email and analytics stages). At the
end, every order answered 2xx (and every probe order) must be decided once, emailed once if confirmed
and counted once by analytics: what is not is lost or doubled.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import ORDER_BODY, Report, say
from bench.procs import GroupWatch, Proc, end_offsets, service_env
from bench.soakcheck import Outcome, settle
from bench.soakload import Clients
from devtools.localkafka import LocalKafka, free_port
from orderflow.events import OrderPlaced, OrderRequest, utcnow
from orderflow.kafka import KafkaError, ensure_topics, make_producer
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_GROUP, EMAIL_GROUP, ORDER_CONFIRMED, ORDER_DETAILS, TRANSACTIONS_GROUP
from orders_backend.orders import place

SECTION = "9 broker SIGKILL soak (own broker, steady load, every order retried until 2xx)"
STAGES = ("transactions_backend", "email_backend", "analytics_backend")


def probe_order(order_id: str) -> OrderPlaced:
    return place(OrderRequest.model_validate({**ORDER_BODY, "user_id": order_id, "order_id": order_id}), utcnow())


def first_write_acked(settings: KafkaSettings, order: OrderPlaced, deadline: float) -> tuple[float, int, int] | None:
    """(when, partition, offset): a fresh producer with the pipeline's settings writes ``order`` to
    ``order_details`` until the broker acknowledges it (the broker accepts writes again)."""
    topic = settings.topic(ORDER_DETAILS)
    while time.monotonic() < deadline:
        try:
            producer = make_producer(settings, max_block_ms=2000, request_timeout_ms=2000, delivery_timeout_ms=3000,
                                     bootstrap_timeout_ms=2000, reconnect_backoff_max_ms=200)
        except KafkaError:
            time.sleep(0.1)
            continue
        try:
            while time.monotonic() < deadline:
                try:
                    meta = producer.send(topic, key=order.order_id.encode(), value=order.to_bytes()).get(timeout=3)
                    return time.monotonic(), int(meta.partition), int(meta.offset)
                except KafkaError:  # a repeat, if this one got written after all, is decided once
                    time.sleep(0.1)
        finally:
            producer.close(timeout=1)
    return None


GROUP_INPUTS = {TRANSACTIONS_GROUP: ORDER_DETAILS, EMAIL_GROUP: ORDER_CONFIRMED, ANALYTICS_GROUP: ORDER_CONFIRMED}


def committed(watch: GroupWatch, settings: KafkaSettings, group: str) -> dict[int, int]:
    return watch.committed(settings.group(group), settings.topic(GROUP_INPUTS[group]))


def through_every_stage(settings: KafkaSettings, partition: int, offset: int, deadline: float) -> float | None:
    """When the order at ``partition``/``offset`` of ``order_details`` is decided and its verdict read and
    committed by the email and analytics stages: every stage works again."""
    watch: GroupWatch | None = None
    verdicts: dict[int, int] | None = None
    while time.monotonic() < deadline:
        try:
            watch = watch or GroupWatch(settings.bootstrap_servers)
            if verdicts is None and committed(watch, settings, TRANSACTIONS_GROUP).get(partition, 0) > offset:
                verdicts = end_offsets(settings, settings.topic(ORDER_CONFIRMED))  # the verdict is in there
            if verdicts is not None and all(
                    committed(watch, settings, group).get(p, 0) >= end
                    for group in (EMAIL_GROUP, ANALYTICS_GROUP) for p, end in verdicts.items()):
                watch.close()
                return time.monotonic()
        except (KafkaError, OSError):
            if watch is not None:
                watch.close()
            watch = None
        time.sleep(0.2)
    if watch is not None:
        watch.close()
    return None


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else None


@dataclass
class Kill:
    down_s: float
    restart_s: float  # restart -> the broker answers metadata (LocalKafka.start returned)
    writes_s: float | None  # restart -> a fresh producer's first ack
    first_2xx_s: float | None  # writes accepted -> the API's first 2xx (negative: before the probe's ack)
    stages_s: float | None  # writes accepted -> the probe order through every stage
    refused: int  # answers other than 2xx while the broker was down or starting
    refused_p50_ms: float | None
    refused_p99_ms: float | None
    no_answer: int  # requests that got no HTTP answer at all


def run(report: Report, base: KafkaSettings, work: Path, *, kills: int, downs: list[float], rate: float,
        gap: float = 8.0, wait: float = 90.0) -> None:
    """``kills`` SIGKILLs of the step's own broker under ``rate`` orders/s; the broker stays down ``downs[i]`` s."""
    # The bench's own clients meet a dead broker on purpose: their connection errors are no news.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    data, port, controller = work / "soak-kafka", free_port(), free_port()
    broker = LocalKafka(data, port, controller).start()
    settings = base.model_copy(update={"bootstrap_servers": broker.bootstrap_servers,
                                       "topic_prefix": f"s{uuid.uuid4().hex[:6]}.", "replica_id": "soak"})
    ensure_topics(settings)
    emails_file = work / "soak-emails.txt"
    smtp_port, api_port = free_port(), free_port()
    env = service_env(settings, ORDERS_HOST="127.0.0.1", ORDERS_PORT=str(api_port), EMAIL_SMTP_HOST="127.0.0.1",
                      EMAIL_SMTP_PORT=str(smtp_port), EMAIL_BACKOFF_SECONDS="0.2", EMAIL_ATTEMPTS="8")
    procs = [Proc("bench.smtpsink", "--port", str(smtp_port), "--record", str(emails_file), env={},
                  log=work / "soak-smtpsink.log")]
    results: list[Kill] = []
    probes: set[str] = set()  # the probe orders the broker acknowledged
    try:
        procs.append(Proc("orders_backend", env=env, log=work / "soak-orders_backend.log"))
        procs += [Proc(module, env=env, log=work / f"soak-{module}.log") for module in STAGES]
        wait_healthy(api_port, 60)
        clients = Clients("127.0.0.1", api_port, rate).start()
        for i in range(kills):
            time.sleep(gap)
            down = downs[i % len(downs)]
            killed = time.monotonic()
            broker.kill()
            time.sleep(down)
            restarted = time.monotonic()
            order = probe_order(f"soak-probe-{i}")
            acked: list[tuple[float, int, int] | None] = []
            probe = threading.Thread(target=lambda out=acked, o=order, by=restarted + wait: out.append(
                first_write_acked(settings, o, by)))
            probe.start()
            broker = LocalKafka(data, port, controller).start()
            ready = time.monotonic()
            probe.join()
            written = acked[0] if acked else None
            if written is not None:
                probes.add(order.order_id)
            writes = written[0] if written else None
            origin = writes or ready
            through: list[float | None] = []
            watching = threading.Thread(target=lambda out=through, w=written, by=origin + wait: out.append(
                through_every_stage(settings, w[1], w[2], by) if w else None))
            watching.start()
            # Any 201 after the restart counts, even one before the probe's ack: the broker took that write.
            first = clients.first_201_after(restarted)
            while first is None and time.monotonic() < origin + wait:
                time.sleep(0.1)
                first = clients.first_201_after(restarted)
            watching.join()
            stages = through[0] if through else None
            answered = clients.answers_between(killed, origin)
            refused = [1000 * (a.ended - a.started) for a in answered if a.status and not 200 <= a.status < 300]
            kill = Kill(down, ready - restarted, None if writes is None else writes - restarted,
                        None if first is None else first - origin, None if stages is None else stages - origin,
                        len(refused), percentile(refused, 50), percentile(refused, 99),
                        sum(1 for a in answered if a.status == 0))
            results.append(kill)
            say(f"soak kill {i + 1}/{kills}: down {down:g} s, broker ready {kill.restart_s:.1f} s after restart, "
                f"first 2xx {_s(kill.first_2xx_s)} after writes accepted, stages {_s(kill.stages_s)}, "
                f"{kill.refused} refused (p99 {_ms(kill.refused_p99_ms)}), {kill.no_answer} unanswered")
        clients.finish(timeout=wait)
        outcome = settle(settings, set(clients.accepted) | probes, emails_file, timeout=180)
        outcome.unanswered = len(clients.pending)
    finally:
        for proc in reversed(procs):
            proc.stop()
        broker.stop()
    record(report, results, outcome)


def wait_healthy(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"orders API not healthy after {timeout:g} s")


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def record(report: Report, kills: list[Kill], outcome: Outcome) -> None:
    for i, kill in enumerate(kills, 1):
        row = report.row(SECTION, f"kill {i}: down {kill.down_s:g} s -> first 2xx", unit="s",
                         note=f"broker ready {kill.restart_s:.1f} s after restart, writes {_s(kill.writes_s)}; "
                              f"stages {_s(kill.stages_s)}; {kill.refused} refused, p99 {_ms(kill.refused_p99_ms)}"
                              + (f"; {kill.no_answer} unanswered" if kill.no_answer else ""))
        row.fig("rate").add(kill.first_2xx_s)
        row.fig("p50_ms").add(kill.refused_p50_ms)
        row.fig("p99_ms").add(kill.refused_p99_ms)
    never = sum(1 for k in kills if k.first_2xx_s is None)
    every = report.row(SECTION, "first 2xx after writes accepted (all kills)", unit="s",
                       note=f"{never} kill(s) without a 2xx" if never else "p50/p99: refusals while down")
    stages = report.row(SECTION, "a new order through every stage (all kills)", unit="s",
                        note="after writes accepted: decided, read by the email and analytics stages")
    for kill in kills:
        every.fig("rate").add(kill.first_2xx_s)
        every.fig("p50_ms").add(kill.refused_p50_ms)
        every.fig("p99_ms").add(kill.refused_p99_ms)
        stages.fig("rate").add(kill.stages_s)
    report.row(SECTION, "lost", unit="orders", note=f"of {outcome.accepted} answered 2xx; "
               f"{outcome.unanswered} never answered 2xx").fig("rate").add(outcome.lost)
    report.row(SECTION, "doubled", unit="orders", note="verdicts, emails and analytics counts").fig("rate").add(
        outcome.doubled)
    report.facts["soak"] = {"kills": [vars(k) for k in kills], "outcome": {**vars(outcome), "lost": outcome.lost,
                                                                           "doubled": outcome.doubled}}

