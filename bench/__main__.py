"""``python -m bench``: start a broker on free ports in a temporary folder, run every step, print the table.

    python -m bench                       # everything, 3 rounds (what `make bench` runs)
    python -m bench --quick               # 1 round, small backlogs: to check the bench itself
    python -m bench --only http,e2e       # some steps: broker, stages, http, e2e, peer, history, soak
    python -m bench --only history        # not in the default run: 10k and 100k orders of history (~10 min)
    python -m bench --only history --history 10000,100000,1000000   # and 1M (opt-in: the build takes long)
    python -m bench --only soak --soak-kills 3    # the broker SIGKILL soak, shorter
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from kafka.record import util as crc32c_util

from bench import e2e, history, http_ladder, kafkatools, peer, profile, soak, stages
from bench.common import RESULTS, Report, Samples, quiet_logs, say
from bench.table import render, render_targets, targets
from devtools.localkafka import LocalKafka, free_port
from orderflow.settings import KafkaSettings

STEPS = ("broker", "stages", "http", "e2e", "peer", "history", "soak", "profile")
# history and profile only when asked: history's builds take minutes, profile is for finding costs
DEFAULT_STEPS = ("broker", "stages", "http", "e2e", "peer", "soak")
OWN_BROKER = {"soak"}  # steps that start (and kill) a broker of their own


def parse_configs(text: str) -> list[tuple[str, int, int]]:
    """``gthread:2:8,sync:4:1`` -> [(worker class, workers, threads)]; the first gets the full ladder."""
    out = []
    for item in text.split(","):
        cls, workers, threads = item.split(":")
        out.append((cls, int(workers), int(threads)))
    return out


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(DEFAULT_STEPS),
                   help="comma-separated steps: " + ", ".join(STEPS) + " (default: all but history and profile)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--perf-records", type=int, default=200_000, help="records per Kafka perf-tool round")
    p.add_argument("--backlog", type=int, default=50_000, help="orders each stage drains")
    p.add_argument("--email-backlog", type=int, default=2_000, help="verdicts email_backend drains (SMTP is slow)")
    p.add_argument("--http-seconds", type=float, default=3.0)
    p.add_argument("--http-connections", type=int, default=16)
    p.add_argument("--http-configs", default="gthread:2:16,sync:4:1,gthread:2:8",
                   help="worker_class:workers:threads,... the first is the shipped default (full ladder)")
    p.add_argument("--e2e-seconds", type=float, default=8.0)
    p.add_argument("--peer-seconds", type=float, default=20.0, help="the peer row's wrk load per round")
    p.add_argument("--profile-rate", type=int, default=300, help="orders/s offered while profiling")
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument("--profile-order-id", action="store_true", help="the profiled orders carry their own order_id")
    p.add_argument("--history", type=history.parse_sizes, default=list(history.SIZES),
                   help="orders of history the history step builds, comma-separated (default 10000,100000; "
                        "1000000 is opt-in)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--soak-kills", type=int, default=10, help="broker SIGKILLs in the soak")
    p.add_argument("--soak-downs", default="3,3,3,3,70,3,3,3,3,3",
                   help="seconds the broker stays down after each kill (repeated as needed)")
    p.add_argument("--soak-rate", type=float, default=30.0, help="orders/s posted during the soak")
    p.add_argument("--quick", action="store_true", help="1 round, small backlogs, short loads")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    p.add_argument("--bootstrap", help=argparse.SUPPRESS)  # a broker already running (bench development)
    p.add_argument("--broker-pid", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.perf_records, args.backlog, args.email_backlog = 1, 50_000, 10_000, 1_500
        args.http_seconds, args.e2e_seconds, args.peer_seconds = 2.0, 4.0, 8.0
        args.soak_kills, args.soak_downs = 3, "3"
    return args


def keep_logs(work: Path, dest: Path) -> None:
    """The services' and tools' logs of this run, kept beside the figures (the work folder is deleted)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copy(log, dest / log.name)
    for broker_log in work.glob("*kafka/server.log"):  # the shared broker's, the soak's
        shutil.copy(broker_log, dest / f"{broker_log.parent.name}-server.log")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    # SIGTERM, and SIGINT even when started in the background (where it is ignored), unwind through the
    # finally blocks below, which stop every process the bench started and the broker.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    quiet_logs()
    steps = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        sys.stderr.write(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}\n")
        return 2
    report = Report()
    report.facts["rounds"] = args.rounds
    report.facts["crc32c_c_module"] = crc32c_util.crc32c_c is not None  # kafka-python's fast CRC path
    with tempfile.TemporaryDirectory(prefix="orderflow-bench-") as tmp:
        work = Path(tmp)
        broker = None
        if args.bootstrap:
            bootstrap, broker_pid = args.bootstrap, args.broker_pid or 0
        elif set(steps) <= OWN_BROKER:
            bootstrap, broker_pid = "127.0.0.1:9", 0  # no shared broker needed
        else:
            say("starting Kafka (one KRaft node) on free ports")
            broker = LocalKafka(work / "kafka", free_port(), free_port()).start()
            bootstrap, broker_pid = broker.bootstrap_servers, broker.process.pid if broker.process else 0
        base = KafkaSettings(bootstrap_servers=bootstrap, partitions=args.partitions, replica_id="bench")
        samples = Samples.make()
        try:
            for step in steps:
                began = time.monotonic()
                say(f"step {step}")
                if step == "broker":
                    kafkatools.run(report, base, work, samples, rounds=args.rounds, records=args.perf_records)
                elif step == "stages":
                    stages.run(report, base, work, samples, rounds=args.rounds, backlog=args.backlog,
                               email_backlog=args.email_backlog)
                elif step == "http":
                    http_ladder.run(report, base, work, rounds=args.rounds, seconds=args.http_seconds,
                                    connections=args.http_connections, configs=parse_configs(args.http_configs))
                elif step == "e2e":
                    e2e.run(report, base, work, broker_pid, rounds=args.rounds, seconds=args.e2e_seconds)
                elif step == "peer":
                    peer.run(report, base, work, broker_pid, rounds=max(2, args.rounds - 1), seconds=args.peer_seconds,
                             connections=args.http_connections)
                elif step == "history":
                    history.run(report, base, work, rounds=args.rounds, sizes=args.history)
                elif step == "profile":
                    profile.run(report, base, work, broker_pid, rate=args.profile_rate, seconds=args.profile_seconds,
                                with_order_id=args.profile_order_id)
                elif step == "soak":
                    soak.run(report, base, work, kills=args.soak_kills, rate=args.soak_rate,
                             downs=[float(d) for d in args.soak_downs.split(",")])
                report.facts[f"step_seconds_{step}"] = round(time.monotonic() - began, 1)
                report.facts["targets"] = targets(report)
                report.write(args.out)
        finally:
            if broker is not None:
                broker.stop()
            keep_logs(work, args.out.parent / "logs")
    sys.stdout.write(render(report) + "\n\n" + render_targets(report.facts["targets"]) + "\n")
    sys.stdout.write(f"\n{json.dumps({k: v for k, v in report.facts.items() if k.startswith('step_')})}\n")
    sys.stdout.write(f"figures: {args.out}\n")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
