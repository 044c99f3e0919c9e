"""``python -m bench.tuning``: one knob at a time against a baseline, in one run; ratios, not absolutes.

Writes ``bench/results/tuning.json`` and prints a table whose ratio column is knob / baseline.
Knobs reach the real services through ``bench.patched`` (environment only; their code is unchanged).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench import e2e, http_ladder, stages
from bench.common import RESULTS, Report, Samples, quiet_logs, say
from bench.procs import GroupWatch, produce_backlog
from bench.table import render
from devtools.localkafka import LocalKafka, free_port
from orderflow.events import OrderPlaced, OrderVerdict
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS, TRANSACTIONS_GROUP

HTTP_KNOBS: dict[str, tuple[dict[str, str], tuple[str, int, int]]] = {
    "baseline (as shipped: gthread 2x16, linger 5 ms)": ({}, ("gthread", 2, 16)),
    "gthread 2x8 (ORDERS_THREADS=8)": ({}, ("gthread", 2, 8)),
    "gthread 3x16 (ORDERS_WORKERS=3)": ({}, ("gthread", 3, 16)),
    "API producer linger_ms=0": ({"BENCH_PRODUCER": '{"linger_ms": 0}'}, ("gthread", 2, 16)),
    "sys.setswitchinterval(1 ms) in workers": ({"BENCH_SWITCH_INTERVAL": "0.001"}, ("gthread", 2, 16)),
    "ORDERS_LOG_LEVEL=WARNING (no log line per order)": ({"ORDERS_LOG_LEVEL": "WARNING"}, ("gthread", 2, 16)),
}
STAGE_KNOBS: dict[str, tuple[dict[str, str], int | None]] = {
    "baseline (KAFKA_MAX_BATCH 500, linger 10 ms, batch 64 KiB)": ({}, None),
    "KAFKA_MAX_BATCH=100": ({}, 100),
    "KAFKA_MAX_BATCH=2000": ({}, 2000),
    "stage producer linger_ms=0": ({"BENCH_PRODUCER": '{"linger_ms": 0}'}, None),
    "stage producer batch_size=16384 (the default before the bench)": ({"BENCH_PRODUCER": '{"batch_size": 16384}'},
                                                                       None),
    "TRANSACTIONS_LOG_LEVEL=WARNING": ({"TRANSACTIONS_LOG_LEVEL": "WARNING"}, None),
    "crc32c missing (pure-Python CRC)": ({"BENCH_NO_CRC32C": "1"}, None),
}
PRODUCE_KNOBS: dict[str, dict[str, Any]] = {
    "baseline (linger 5 ms, batch 64 KiB)": {},
    "linger_ms=0": {"linger_ms": 0},
    "linger_ms=20": {"linger_ms": 20},
    "batch_size=16384 (the default before the bench)": {"batch_size": 16384},
}


def http(report: Report, base: KafkaSettings, work: Path, rounds: int, seconds: float) -> None:
    section = "tuning: real API, wrk -c16 (publish, wait for ack)"
    first = next(iter(HTTP_KNOBS))
    for _ in range(rounds):  # knobs interleaved round by round, so a noisy minute hits them all alike
        for name, (env, config) in HTTP_KNOBS.items():
            row = report.row(section, name, unit="req/s", ratio_to=f"{section}/{first}")
            http_ladder.measure(row, base, work, http_ladder.TOP, rounds=1, seconds=seconds, connections=16,
                                config=config, env=env, patched=True)
            say(f"tuning http {name}: {row.fig('rate').values[-1]:.0f} req/s")


def stage(report: Report, base: KafkaSettings, work: Path, samples: Samples, rounds: int, backlog: int) -> None:
    section = "tuning: transactions_backend with transactions, draining a backlog"
    first = next(iter(STAGE_KNOBS))
    orders = samples.orders(backlog)
    watch = GroupWatch(base.bootstrap_servers)
    for _ in range(rounds):
        for name, (env, max_batch) in STAGE_KNOBS.items():
            row = report.row(section, name, ratio_to=f"{section}/{first}")
            settings = stages.fresh(base, "tu", True, max_batch)
            produce_backlog(settings, settings.topic(ORDER_DETAILS), orders)
            d = stages.drain(settings, watch, "bench.patched", "transactions_backend",
                             group=settings.group(TRANSACTIONS_GROUP), topic=settings.topic(ORDER_DETAILS),
                             log=work / "tuning-stage.log", env=env)
            row.fig("rate").add(d.rate)
            row.fig("cpu_ms_per_rec").add(1000 * d.cpu_s / d.records if d.cpu_s and d.records else None)
            say(f"tuning stage {name}: {d.rate or 0:.0f}/s")
    crc = "tuning: raw consume->produce loop, at-least-once"
    for _ in range(rounds):
        for name, env in (("baseline (crc32c C module)", {}), ("crc32c missing", {"BENCH_NO_CRC32C": "1"})):
            row = report.row(crc, name, ratio_to=f"{crc}/baseline (crc32c C module)")
            settings = stages.fresh(base, "crc", False)
            produce_backlog(settings, settings.topic(ORDER_DETAILS), orders)
            d = stages.raw_loop(settings, watch, work, env=env)
            row.fig("rate").add(d.rate)
            row.fig("cpu_ms_per_rec").add(1000 * d.cpu_s / d.records if d.cpu_s and d.records else None)
    watch.close()


def produce(report: Report, base: KafkaSettings, samples: Samples, rounds: int, backlog: int) -> None:
    section = "tuning: client produce loop (send all, flush)"
    first = next(iter(PRODUCE_KNOBS))
    orders = samples.orders(backlog)
    for _ in range(rounds):  # interleaved, as everywhere here
        for name, overrides in PRODUCE_KNOBS.items():
            settings = stages.fresh(base, "pr", False)
            rate = produce_backlog(settings, settings.topic(ORDER_DETAILS), orders, **overrides)
            report.row(section, name, ratio_to=f"{section}/{first}").fig("rate").add(rate)


def json_codecs(report: Report, samples: Samples) -> None:
    """Per-record parse and dump of our events: pydantic's own JSON (Rust) vs orjson + pydantic."""
    section = "tuning: JSON, per record (in-process, 20,000 calls)"
    placed = OrderPlaced.model_validate_json(samples.order)
    verdict = OrderVerdict.model_validate_json(samples.verdict)
    cases = {
        "parse OrderVerdict: model_validate_json": lambda: OrderVerdict.model_validate_json(samples.verdict),
        "parse OrderVerdict: orjson.loads + model_validate": lambda: OrderVerdict.model_validate(
            orjson.loads(samples.verdict)),
        "dump OrderPlaced: model_dump_json": lambda: placed.model_dump_json(),
        "dump OrderPlaced: orjson.dumps(model_dump(mode=json))": lambda: orjson.dumps(placed.model_dump(mode="json")),
        "dump OrderVerdict: model_dump_json": lambda: verdict.model_dump_json(),
        "dump OrderVerdict: orjson.dumps(model_dump(mode=json))": lambda: orjson.dumps(
            verdict.model_dump(mode="json")),
    }
    for _ in range(5):  # interleaved: a busy moment on the machine hits every case alike
        for name, call in cases.items():
            first = next(k for k in cases if k.startswith(name.split(":")[0]))
            per_call = timeit.timeit(call, number=20_000) / 20_000
            report.row(section, name, unit="calls/s", ratio_to=f"{section}/{first}").fig("rate").add(1 / per_call)


E2E_KNOBS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "baseline": ({}, ()),
    "API producer linger_ms=0": ({"BENCH_PRODUCER": '{"linger_ms": 0}'}, ()),
    "without email_backend (what its CPU costs the rest)": ({}, ("email_backend",)),
}


def end_to_end(report: Report, base: KafkaSettings, work: Path, broker_pid: int, rounds: int,
               seconds: float) -> None:
    """500 orders/s through the whole system, API knobs only (the rows land in section 5 and 6, labelled)."""
    for _ in range(rounds):
        for name, (env, without) in E2E_KNOBS.items():
            e2e.run(report, base, work, broker_pid, rounds=1, seconds=seconds, rates=(500,), saturation=False,
                    api_env=env or {"BENCH_PRODUCER": "{}"}, label=f" [{name}]", without=without)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tuning", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="json,produce,stage,http,e2e")
    p.add_argument("--backlog", type=int, default=30_000)
    p.add_argument("--http-seconds", type=float, default=3.0)
    p.add_argument("--e2e-seconds", type=float, default=8.0)
    p.add_argument("--out", type=Path, default=RESULTS / "tuning.json")
    args = p.parse_args(argv)
    quiet_logs()
    steps = args.only.split(",")
    report = Report()
    samples = Samples.make()
    with tempfile.TemporaryDirectory(prefix="orderflow-tuning-") as tmp:
        work = Path(tmp)
        broker = LocalKafka(work / "kafka", free_port(), free_port()).start()
        base = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, partitions=6,
                             replica_id=f"tune{uuid.uuid4().hex[:4]}")
        try:
            if "json" in steps:
                json_codecs(report, samples)
            if "produce" in steps:
                produce(report, base, samples, args.rounds, args.backlog)
            if "stage" in steps:
                stage(report, base, work, samples, args.rounds, args.backlog)
            if "http" in steps:
                http(report, base, work, args.rounds, args.http_seconds)
            if "e2e" in steps:
                assert broker.process is not None
                end_to_end(report, base, work, broker.process.pid, args.rounds, args.e2e_seconds)
        finally:
            broker.stop()
            if stages.INCIDENTS:
                report.facts["stuck_starts"] = list(stages.INCIDENTS)
            report.write(args.out)
    sys.stdout.write(render(report) + f"\nfigures: {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
