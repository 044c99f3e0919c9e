"""Client ceiling and stage throughput: each consumer service drains a pre-produced backlog.

Per round and per mode (transactions on, then off), every run gets fresh topics and groups (a new
topic prefix), so nothing is skipped as "already decided" and no state carries over:

* ``<P>.order_details`` gets the order backlog, written by the pipeline's own producer settings: that
  write is the client's produce ceiling. The raw consume->produce loop (``bench.rawloop``) and then
  ``python -m transactions_backend`` drain it, each as its own group.
* ``<A>.order_confirmed`` gets verdicts for ``python -m analytics_backend``.
* ``<E>.order_confirmed`` gets (fewer) verdicts for ``python -m email_backend`` and a counting SMTP server.

A drain is timed from the group's first commit to the commit of the last offset (polled every 100 ms
from the broker), so interpreter start-up, group join and state restore are left out.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench.common import Report, Samples, say
from bench.http_ladder import wait_port
from bench.procs import (
    GroupWatch,
    Proc,
    Stuck,
    end_offsets,
    produce_acked_one_by_one,
    produce_backlog,
    service_env,
    wait_drained,
)
from bench.smtpsink import ceiling as smtp_ceiling
from devtools.localkafka import free_port
from email_backend.render import render
from orderflow.events import OrderVerdict
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from orderflow.topics import (
    ANALYTICS_GROUP,
    EMAIL_GROUP,
    ORDER_CONFIRMED,
    ORDER_DETAILS,
    TRANSACTIONS_GROUP,
    TopicSpec,
)

CLIENT = "2 client ceiling (kafka-python, our settings)"
SMTP = "2 SMTP ceiling (smtplib, one connection, to the bench's aiosmtpd sink)"
ONE_BY_ONE = 2000  # records sent one at a time, each waiting for its ack
STAGES = "4 stages draining a backlog (real services as processes)"


def mode_name(eos: bool) -> str:
    return "transactions" if eos else "at-least-once"


def fresh(base: KafkaSettings, tag: str, eos: bool, max_batch: int | None = None) -> KafkaSettings:
    settings = base.model_copy(update={
        "topic_prefix": f"b{uuid.uuid4().hex[:6]}-{tag}.", "exactly_once": eos, "replica_id": "bench",
        **({"max_batch": max_batch} if max_batch else {}),
    })
    ensure_topics(settings)
    return settings


INCIDENTS: list[str] = []  # starts that committed nothing for a minute and were retried (see README)


def drain(settings: KafkaSettings, watch: GroupWatch, module: str, *args: str, group: str, topic: str,
          log: Path, env: dict[str, str] | None = None, timeout: float = 600):  # type: ignore[no-untyped-def]
    """Start ``python -m module`` and time it until ``group`` has committed the end of ``topic``.

    A start that commits nothing for 60 s is stopped and started once more (noted in ``INCIDENTS``):
    kafka-python can join a group before it has the topic's metadata and then own no partition.
    """
    ends = end_offsets(settings, topic)
    for attempt in (1, 2):
        with Proc(module, *args, env={**service_env(settings), **(env or {})}, log=log) as proc:
            try:
                result = wait_drained(watch, group, topic, ends, started=proc.started, timeout=timeout, proc=proc)
            except Stuck as exc:
                INCIDENTS.append(f"{module} {' '.join(args)}: {exc} (attempt {attempt}); log {log}")
                say(f"warning: {exc}; {'restarting it' if attempt == 1 else 'giving up'}")
                if attempt == 2:
                    raise
                continue
            code = proc.stop()
        if code != 0:
            say(f"warning: {module} exited with {code}; see {log}")
        return result
    raise AssertionError("unreachable")


def raw_loop(settings: KafkaSettings, watch: GroupWatch, work: Path, *, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    out = settings.topic("raw_out")
    ensure_topics(settings, [TopicSpec(out, settings.partitions)])
    group = settings.group(f"raw-{uuid.uuid4().hex[:4]}")
    args = ["--input", settings.topic(ORDER_DETAILS), "--output", out, "--group", group]
    return drain(settings, watch, "bench.rawloop", *args, *(["--eos"] if settings.exactly_once else []),
                 group=group, topic=settings.topic(ORDER_DETAILS), log=work / "rawloop.log", env=env)


def run(report: Report, base: KafkaSettings, work: Path, samples: Samples, *, rounds: int, backlog: int,
        email_backlog: int, stages: tuple[str, ...] = ("transactions", "analytics", "email")) -> None:
    orders = samples.orders(backlog)
    verdicts = samples.verdicts(backlog)
    watch = GroupWatch(base.bootstrap_servers)
    smtp_port = free_port()
    report.facts["stage_backlog"] = backlog
    report.facts["email_backlog"] = email_backlog
    produce = report.row(CLIENT, "produce loop (make_producer as shipped: acks=all, idempotent)",
                         note=f"{backlog} orders of {len(samples.order)} B, send all then flush")
    one = report.row(CLIENT, "one record at a time, each waiting for its ack (POST /order with one request in flight)",
                     note=f"{ONE_BY_ONE} orders; make_producer as the API has it (linger 5 ms) and with linger 0")
    one_l0 = report.row(CLIENT, "one record at a time, linger_ms=0", note="the same without linger")
    smtp = report.row(SMTP, "sendmail in a loop, pre-rendered confirmation emails", unit="msg/s",
                      note=f"{email_backlog} emails; no Kafka: what one email_backend connection could reach")
    mails = [render(OrderVerdict.model_validate_json(v), sender="The Shop <orders@shop.example>",
                    domain="shop.example").as_bytes() for _, v in verdicts[:email_backlog]]
    with Proc("bench.smtpsink", "--port", str(smtp_port), env={}, log=work / "smtpsink.log"):
        wait_port(smtp_port)
        for r in range(rounds):
            smtp.fig("rate").add(smtp_ceiling(smtp_port, mails))
            ones = fresh(base, "one", True)
            for row, extra in ((one, {}), (one_l0, {"linger_ms": 0})):
                rate, cpu_ms = produce_acked_one_by_one(ones, ones.topic(ORDER_DETAILS), orders[:ONE_BY_ONE], **extra)
                row.fig("rate").add(rate)
                row.fig("cpu_ms_per_rec").add(cpu_ms)
            say(f"round {r + 1}: SMTP ceiling {smtp.fig('rate').values[-1]:.0f} msg/s, acked one by one "
                f"{one.fig('rate').values[-1]:.0f}/s ({one.fig('cpu_ms_per_rec').values[-1]:.2f} ms CPU each)")
            for eos in (True, False):
                mode = mode_name(eos)
                raw = report.row(CLIENT, f"consume->produce loop, {mode}",
                                 note="no logic: each polled batch copied out and committed (as Stage does)")
                tx = fresh(base, "tx", eos)
                produce.fig("rate").add(produce_backlog(tx, tx.topic(ORDER_DETAILS), orders))
                d = raw_loop(tx, watch, work)
                raw.fig("rate").add(d.rate)
                raw.fig("cpu_ms_per_rec").add(1000 * d.cpu_s / d.records if d.cpu_s and d.records else None)
                say(f"round {r + 1} {mode}: produce {produce.fig('rate').values[-1]:.0f}/s, "
                    f"raw loop {d.rate or 0:.0f}/s")
                runs = []
                if "transactions" in stages:
                    runs.append(("transactions_backend", tx, TRANSACTIONS_GROUP, ORDER_DETAILS, {}))
                if "analytics" in stages:
                    an = fresh(base, "an", eos)
                    produce_backlog(an, an.topic(ORDER_CONFIRMED), verdicts)
                    runs.append(("analytics_backend", an, ANALYTICS_GROUP, ORDER_CONFIRMED, {}))
                if "email" in stages:
                    em = fresh(base, "em", eos)
                    produce_backlog(em, em.topic(ORDER_CONFIRMED), verdicts[:email_backlog])
                    runs.append(("email_backend", em, EMAIL_GROUP, ORDER_CONFIRMED,
                                 {"EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(smtp_port)}))
                for module, settings, group, topic, env in runs:
                    n = email_backlog if module == "email_backend" else backlog
                    note = f"backlog {n}" if n == backlog else \
                        f"backlog {n}, not {backlog}: an SMTP conversation per email would take minutes"
                    row = report.row(STAGES, f"{module}, {mode}", ratio_to=f"{CLIENT}/consume->produce loop, {mode}",
                                     note=note)
                    d = drain(settings, watch, module, group=settings.group(group), topic=settings.topic(topic),
                              log=work / f"{module}.log", env=env)
                    row.fig("rate").add(d.rate)
                    row.fig("cpu_ms_per_rec").add(1000 * d.cpu_s / d.records if d.cpu_s and d.records else None)
                    say(f"round {r + 1} {mode}: {module} {d.rate or 0:.0f}/s "
                        f"(first commit after {d.first_commit_s:.1f}s)")
                time.sleep(0.5)
    watch.close()
    if INCIDENTS:
        report.facts["stuck_starts"] = list(INCIDENTS)
