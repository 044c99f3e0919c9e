"""A history of ``n`` orders on fresh topics, as the pipeline would have left it, built fast.

1. ``order_details``: ``n`` synthetic orders (``bench.history_events``), written with the pipeline's
   producer settings (``orderflow.kafka.make_producer``), not through the HTTP API.
2. ``python -m transactions_backend`` (the real service, exactly-once) decides them all: its verdicts in
   ``order_confirmed``, its group's committed offsets and its state file are the ones a real run leaves.
3. Email: an outcome per confirmed order in ``order_email_sent`` and its note in ``email_sent_log`` are
   written directly, and email_backend's group offsets are committed at the end of ``order_confirmed``
   (email_backend runs at ~500 emails/s through SMTP: 100k orders would take minutes, 1M half an
   hour). Then ``python -m email_backend`` runs once: without a state file it reads ``order_confirmed``
   back from the beginning up to those offsets, as after a lost file, so its state file covers the
   history too; it sends nothing, every confirmed order being recorded.
4. ``python -m order_projector`` on a new store reads the three topics from offset 0 (its first start):
   timed from its start until the store holds every offset of them, which gives the store's build rate.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import say
from bench.history_events import History
from bench.procs import GroupWatch, Proc, end_offsets, produce_backlog, service_env
from bench.stages import drain
from email_backend.main import RECORDED_UP_TO
from orderflow.kafka import TopicPartition, make_consumer, offsets
from orderflow.settings import KafkaSettings
from orderflow.statestore import state_file
from orderflow.store import OrderStore, StoreSettings, StoreUnavailable
from orderflow.topics import (
    EMAIL_GROUP,
    EMAIL_SENT_LOG,
    ORDER_CONFIRMED,
    ORDER_DETAILS,
    ORDER_EMAIL_SENT,
    TRANSACTIONS_GROUP,
)

STORE_TOPICS = (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT)


@dataclass
class Built:
    """A history on the broker, its state files and its store, with the projector left running."""

    settings: KafkaSettings
    n: int
    history: History
    store_url: str
    store_path: Path
    state_dir: Path
    projector: Proc
    store_seconds: float  # the projector's start to the store holding every offset
    store_records: int  # records the projector read (orders, verdicts, outcomes)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each part of the build

    def env(self, **extra: str) -> dict[str, str]:
        """A service's environment over this history: its topics, its store, its state files."""
        state = str(self.state_dir)
        return service_env(self.settings, STORE_DATABASE_URL=self.store_url, TRANSACTIONS_STATE_DIR=state,
                           EMAIL_STATE_DIR=state, **extra)

    def state_files(self) -> list[Path]:
        return [state_file(self.state_dir, self.settings.group(g), self.settings.replica_id)
                for g in (TRANSACTIONS_GROUP, EMAIL_GROUP)]


def commit_group(settings: KafkaSettings, group: str, topic: str, ends: dict[int, int]) -> None:
    """Commit ``ends`` for ``group`` without joining it (the group has no member now)."""
    consumer = make_consumer(settings, group_id=group)
    try:
        consumer.commit(offsets({TopicPartition(topic, p): end for p, end in ends.items()}))
    finally:
        consumer.close(autocommit=False)


def state_checkpoints(path: Path, name: str) -> dict[int, int]:
    """A state file's checkpoint ``name`` per partition, read without writing (the service has it open)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT part, next_offset FROM checkpoints WHERE name = ?", (name,)).fetchall()
    except sqlite3.OperationalError:  # the service is still making its tables
        return {}
    finally:
        db.close()
    return {int(p): int(offset) for p, offset in rows}


def wait_until(done: Callable[[], bool], proc: Proc, timeout: float, what: str, interval: float = 0.2) -> float:
    """Call ``done()`` until it is true; seconds since ``proc`` started. The process must stay alive."""
    deadline = time.monotonic() + timeout
    while not done():
        if not proc.alive():
            raise RuntimeError(f"{proc.module} exited before {what}; see {proc.log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.module}: not {what} after {timeout:.0f}s; see {proc.log}")
        time.sleep(interval)
    return time.monotonic() - proc.started


def store_offsets(store: OrderStore, ends: dict[str, dict[int, int]]) -> int:
    """Offsets of ``ends`` the store holds (0 while the projector has not made its tables)."""
    try:
        return sum(min(store.offset(topic, p), end) for topic, parts in ends.items() for p, end in parts.items())
    except StoreUnavailable:
        return 0


def build(settings: KafkaSettings, work: Path, n: int, *, watch: GroupWatch, smtp_port: int) -> Built:
    folder = work / f"history-{n}"
    state_dir = folder / "state"
    store_path = folder / "orders.sqlite3"
    store_url = f"sqlite:///{store_path}"
    history = History(n, datetime.now(UTC))
    seconds: dict[str, float] = {}
    env = service_env(settings, STORE_DATABASE_URL=store_url, TRANSACTIONS_STATE_DIR=str(state_dir),
                      EMAIL_STATE_DIR=str(state_dir))
    timeout = 120 + n / 500  # generous: a million orders at a few thousand a second

    began = time.monotonic()
    rate = produce_backlog(settings, settings.topic(ORDER_DETAILS), history.orders())
    seconds["orders written"] = time.monotonic() - began
    say(f"history {n}: {n} orders written ({rate:.0f}/s)")

    began = time.monotonic()
    drained = drain(settings, watch, "transactions_backend", group=settings.group(TRANSACTIONS_GROUP),
                    topic=settings.topic(ORDER_DETAILS), log=work / f"history-{n}-transactions_backend.log",
                    env=env, timeout=timeout)
    seconds["transactions_backend decided them"] = time.monotonic() - began
    say(f"history {n}: transactions_backend decided them ({drained.rate or 0:.0f}/s)")

    began = time.monotonic()
    produce_backlog(settings, settings.topic(ORDER_EMAIL_SENT), history.outcomes())
    produce_backlog(settings, settings.topic(EMAIL_SENT_LOG), history.notes())
    confirmed_ends = end_offsets(settings, settings.topic(ORDER_CONFIRMED))
    commit_group(settings, settings.group(EMAIL_GROUP), settings.topic(ORDER_CONFIRMED), confirmed_ends)
    email_state = state_file(state_dir, settings.group(EMAIL_GROUP), settings.replica_id)
    with Proc("email_backend", env={**env, "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(smtp_port)},
              log=work / f"history-{n}-email_backend.log") as email:
        def email_state_done() -> bool:
            found = state_checkpoints(email_state, RECORDED_UP_TO)
            return all(found.get(p, -1) >= end for p, end in confirmed_ends.items())
        wait_until(email_state_done, email, timeout, "caught up with order_confirmed")
    seconds["outcomes written, email_backend's state built"] = time.monotonic() - began
    say(f"history {n}: {history.confirmed} outcomes and notes written; email_backend's state file built")

    ends = {settings.topic(t): end_offsets(settings, settings.topic(t)) for t in STORE_TOPICS}
    store = OrderStore.open(StoreSettings(database_url=store_url))
    projector = Proc("order_projector", env=env, log=work / f"history-{n}-order_projector.log")
    try:
        total = sum(sum(parts.values()) for parts in ends.values())
        store_seconds = wait_until(lambda: store_path.exists() and store_offsets(store, ends) >= total,
                                   projector, timeout * 2, "caught up with the order topics")
        counts = store.counts()
    except BaseException:
        projector.stop()
        raise
    finally:
        store.close()
    expected = {"received": n, "confirmed": history.confirmed, "rejected": n - history.confirmed,
                "emails_sent": history.confirmed}
    wrong = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
    if wrong:
        projector.stop()
        raise RuntimeError(f"the store of the history does not hold what was written: {wrong} (found, expected)")
    records = n + n + history.confirmed
    seconds["order store built by order_projector"] = store_seconds
    say(f"history {n}: order store built in {store_seconds:.1f}s ({records / store_seconds:.0f} records/s)")
    return Built(settings, n, history, store_url, store_path, state_dir, projector, store_seconds, records, seconds)
