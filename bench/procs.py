"""The bench's processes and what it reads from the broker: service start/stop, group progress, CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from bench.common import ROOT
from devtools.localkafka import stop_process
from orderflow.kafka import TopicPartition, make_consumer, make_producer
from orderflow.settings import KafkaSettings


def produce_backlog(settings: KafkaSettings, topic: str, records: Iterable[tuple[bytes, bytes]],
                    **overrides: Any) -> float:
    """Write ``records`` with the pipeline's own producer settings; return records/s (send + flush).

    ``records`` may be a generator: a history of a million orders is written without holding it."""
    producer = make_producer(settings, **overrides)
    try:
        producer.partitions_for(topic)  # metadata first, so the clock times only the writes
        start = time.perf_counter()
        sent = 0
        for key, value in records:
            producer.send(topic, key=key, value=value)
            sent += 1
        producer.flush(timeout=120)
        return sent / (time.perf_counter() - start)
    finally:
        producer.close(timeout=10)


def produce_acked_one_by_one(settings: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]],
                             **overrides: Any) -> tuple[float, float]:
    """Send each record and wait for its ack before the next, as ``POST /order`` does with one request in
    flight; return (records/s, CPU ms per record of this process, which runs nothing else meanwhile)."""
    producer = make_producer(settings, **overrides)
    try:
        producer.send(topic, key=b"warm", value=records[0][1]).get(timeout=30)  # connection, metadata, pid
        cpu, start = time.process_time(), time.perf_counter()
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        return len(records) / elapsed, 1000 * used / len(records)
    finally:
        producer.close(timeout=10)


# -- consumer group progress ------------------------------------------------------------------------
class GroupWatch:
    """Committed offsets of a group, as the broker has them (one OffsetFetch per look)."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="bench-watch")

    def committed(self, group: str, topic: str) -> dict[int, int]:
        try:
            found = self.admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError as exc:  # e.g. the group coordinator of a brand-new broker is still being set up
            if not getattr(exc, "retriable", False):
                raise
            return {}
        return {tp.partition: om.offset for tp, om in found.items() if tp.topic == topic and om.offset >= 0}

    def close(self) -> None:
        self.admin.close()


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = make_consumer(settings, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close(autocommit=False)


@dataclass
class Drain:
    records: int
    first_commit_s: float  # since the clock started (process start): startup, restore, first batch
    last_commit_s: float
    cpu_s: float | None = None  # CPU the process spent between the first and the last commit

    @property
    def rate(self) -> float | None:
        """Records/s between the first and the last commit: start-up and group join left out.

        None when everything was committed at once (a backlog of one batch says nothing).
        """
        span = self.last_commit_s - self.first_commit_s
        return self.records / span if span > 0 and self.records else None


class Stuck(Exception):
    """A consumer committed nothing for a long time after it started (e.g. it was assigned no partitions)."""


def wait_drained(watch: GroupWatch, group: str, topic: str, ends: dict[int, int], *, started: float,
                 timeout: float, proc: Proc | None = None, interval: float = 0.1,
                 first_commit_within: float = 60) -> Drain:
    """Poll the group's commits until every partition is at its end; time first and last commit."""
    total = sum(ends.values())
    first_t, first_n, first_cpu = None, 0, 0.0
    deadline = started + timeout
    while True:
        now = time.monotonic()
        done = watch.committed(group, topic)
        n = sum(min(done.get(p, 0), end) for p, end in ends.items())
        if n and first_t is None:
            first_t, first_n = now, n
            first_cpu = proc.cpu() if proc else 0.0
        if n >= total:
            assert first_t is not None
            cpu = proc.cpu() - first_cpu if proc else None
            return Drain(total - first_n, first_t - started, now - started, cpu)
        if first_t is None and now > started + first_commit_within:
            raise Stuck(f"{group} committed nothing of {topic} in {first_commit_within:g}s")
        if now > deadline:
            raise TimeoutError(f"{group} committed {n}/{total} of {topic} in {timeout}s")
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{group}: process exited before draining {topic} ({n}/{total}); see {proc.log}")
        time.sleep(interval)


class Proc:
    """``python -m <module> [args]`` with extra environment, output to a log file; stopped with SIGTERM."""

    def __init__(self, module: str, *args: str, env: dict[str, str], log: Path) -> None:
        self.module = module
        self.log = log
        # State files beside the log, not in the working copy's .run/state, unless the caller says where.
        state = {"TRANSACTIONS_STATE_DIR": str(log.parent / "state"), "EMAIL_STATE_DIR": str(log.parent / "state")}
        with open(log, "ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                                          env={**state, **os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu(self) -> float:
        return cpu_seconds([self.pid]).get(self.pid, 0.0)

    def stop(self, timeout: float = 30) -> int:
        return stop_process(self.popen, timeout)

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    """The environment a service reads its settings from."""
    return {
        **settings.as_env(),
        # Metrics are still counted; only their HTTP endpoints (fixed default ports) stay closed.
        "TRANSACTIONS_METRICS_PORT": "0", "EMAIL_METRICS_PORT": "0", "ANALYTICS_METRICS_PORT": "0",
        "PROJECTOR_METRICS_PORT": "0",
        # The bench is one client posting far more than a shop's customer may: the per-client limit is
        # raised out of its way (it is still counted, so its cost is in the figures).
        "ORDERS_RATE_LIMIT": os.environ.get("BENCH_RATE_LIMIT", "1000000/second"),
        **extra,
    }


# -- CPU and memory accounting ----------------------------------------------------------------------
def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """utime+stime of each live process and its live descendants (gunicorn workers count to their master)."""
    out = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        out[pid] = total
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its live descendants (a gunicorn master and its workers)."""
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total
