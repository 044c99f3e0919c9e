"""dashboard.feed's Kafka reader against an in-memory stand-in for the consumer: which topics, seeking,
parsing, retrying. (The orders come from the order store: tests/integration/test_dashboard_store.py.)"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from dashboard.feed import Feed
from dashboard.lag import LagWatcher
from dashboard.view import DashboardState
from orderflow.kafka import KafkaError, TopicPartition
from orderflow.settings import KafkaSettings
from tests.support import wait_until
from tests.unit.test_dashboard_view import snapshot

KAFKA = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="u.")
DETAILS, CONFIRMED, EMAILS, ANALYTICS, DETAILS_DLQ, CONFIRMED_DLQ, EMAILS_DLQ = (KAFKA.topic(t) for t in (
    "order_details", "order_confirmed", "order_email_sent", "analytics_result", "order_details.dlq",
    "order_confirmed.dlq", "order_email_sent.dlq"))


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_740_000_000_000
    key: bytes | None = None


def snapshot_bytes(i: int, revenue: str = "10.00") -> bytes:
    """A valid analytics snapshot, of scope ``order_confirmed/<i>``."""
    return snapshot(i, 1, revenue, offset=i).to_bytes()


class FakeConsumer:
    """Partitions, offsets and records held in memory; ``poll`` hands out what lies past each position."""

    def __init__(self, log: dict[TopicPartition, list[FakeRecord]], begin: dict[TopicPartition, int] | None = None,
                 fail_after_polls: int | None = None) -> None:
        self.log = log
        self.begin = begin or {}
        self.fail_after_polls = fail_after_polls
        self.polls = 0
        self.positions: dict[TopicPartition, int] = {}
        self.seeks: dict[TopicPartition, int] = {}
        self.asked: set[str] = set()
        self.closed = False

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.asked.add(topic)
        return {tp.partition for tp in self.log if tp.topic == topic}

    def assign(self, tps: list[TopicPartition]) -> None:
        assert set(tps) == set(self.log)

    def beginning_offsets(self, tps: list[TopicPartition], timeout_ms: int) -> dict[TopicPartition, int]:
        return {tp: self.begin.get(tp, 0) for tp in tps}

    def end_offsets(self, tps: list[TopicPartition], timeout_ms: int) -> dict[TopicPartition, int]:
        return {tp: len(self.log[tp]) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = self.seeks[tp] = offset

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[FakeRecord]]:
        self.polls += 1
        if self.fail_after_polls is not None and self.polls > self.fail_after_polls:
            raise KafkaError("connection lost")
        out = {}
        for tp, position in self.positions.items():
            records = self.log[tp][position:position + 50]
            if records:
                out[tp] = records
                self.positions[tp] = position + len(records)
        if not out:
            time.sleep(0.01)
        return out

    def close(self) -> None:
        self.closed = True


def dead_letter_headers(offset: int) -> tuple[tuple[str, bytes], ...]:
    return (("error", f"not JSON #{offset}".encode()), ("source_topic", DETAILS.encode()),
            ("source_partition", b"0"), ("source_offset", str(offset).encode()))


def topic_log(analytics: Sequence[bytes | None], dead_letters: int = 0) -> dict[TopicPartition, list[FakeRecord]]:
    """What the dashboard reads from Kafka: analytics_result and the dead-letter topics."""
    contents: dict[str, list[bytes | None]] = {ANALYTICS: list(analytics), CONFIRMED_DLQ: [], EMAILS_DLQ: []}
    log = {TopicPartition(topic, 0): [FakeRecord(topic, 0, i, v) for i, v in enumerate(values)]
           for topic, values in contents.items()}
    log[TopicPartition(DETAILS_DLQ, 0)] = [FakeRecord(DETAILS_DLQ, 0, i, b"\xff", dead_letter_headers(i))
                                           for i in range(dead_letters)]
    return log


@pytest.fixture
def run_feed() -> Iterator[Callable[..., Feed]]:
    feeds: list[Feed] = []

    def start(factory: Callable[[], Any], backoff: tuple[float, float] = (0.01, 0.05),
              lag: LagWatcher | None = None) -> Feed:
        feed = Feed(KAFKA, DashboardState(), consumer_factory=factory, poll_timeout_ms=10, backoff=backoff, lag=lag)
        feeds.append(feed)
        feed.start()
        return feed

    yield start
    for feed in feeds:
        feed.stop()
        assert not feed.running


def scopes(feed: Feed) -> int:
    return int(feed.snapshot()["totals"]["scopes"])


@pytest.mark.parametrize(("begin", "end"), [(0, 50), (45, 50)])  # retention (or compaction) moved the start
def test_analytics_and_dead_letters_are_read_from_their_start_and_order_topics_not_at_all(
        run_feed: Callable[..., Feed], begin: int, end: int) -> None:
    log = topic_log([snapshot_bytes(i) for i in range(end)], dead_letters=3)
    tp = TopicPartition(ANALYTICS, 0)
    consumer = FakeConsumer(log, begin={tp: begin})
    feed = run_feed(lambda: consumer)
    wait_until(lambda: feed.connected and consumer.polls > 2, 5, 0.01, "the feed to poll")
    assert consumer.seeks[tp] == begin and consumer.seeks[TopicPartition(DETAILS_DLQ, 0)] == 0
    assert consumer.asked == {ANALYTICS, DETAILS_DLQ, CONFIRMED_DLQ, EMAILS_DLQ}
    assert not consumer.asked & {DETAILS, CONFIRMED, EMAILS}  # the orders come from the order store
    wait_until(lambda: scopes(feed) == end - begin, 5, 0.01, "the snapshots applied")
    assert feed.snapshot()["dead_letters"]["total"] == 3
    assert feed.snapshot()["store"] == {"running": False, "connected": False, "ready": False, "error": None,
                                        "rows_read": 0, "loads": 0}  # this feed was given no store


def test_unreadable_records_are_skipped_and_logged(run_feed: Callable[..., Feed],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    log = topic_log([b"not json", snapshot_bytes(1, "12.50"), None, b'{"scope": "x"}'])
    consumer = FakeConsumer(log)
    with caplog.at_level(logging.WARNING, logger="dashboard.feed"):
        feed = run_feed(lambda: consumer)
        wait_until(lambda: feed.status()["skipped"] == 3 and feed.status()["applied"] == 1, 5, 0.01, "all read")
    state = feed.snapshot()
    assert state["totals"]["revenue"] == "12.50" and state["totals"]["scopes"] == 1
    assert all(f"{ANALYTICS}[0]@{offset}" in caplog.text for offset in (0, 2, 3))
    assert feed.positions[TopicPartition(ANALYTICS, 0)] == 4


def test_broker_down_at_start_is_waited_out(run_feed: Callable[..., Feed]) -> None:
    attempts = []
    consumer = FakeConsumer(topic_log([snapshot_bytes(1)]))

    def factory() -> FakeConsumer:
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise KafkaError("NoBrokersAvailable")
        return consumer

    feed = run_feed(factory, backoff=(0.05, 1.0))
    wait_until(lambda: scopes(feed) == 1, 5, 0.01, "the snapshot after the outage")
    assert len(attempts) == 4 and feed.connected and feed.last_error is None
    gaps = [b - a for a, b in itertools.pairwise(attempts)]  # about 0.05, 0.1, 0.2 s
    assert gaps[0] >= 0.05 and gaps[2] > gaps[0] * 2  # backing off, not spinning


def test_missing_topics_are_waited_for(run_feed: Callable[..., Feed]) -> None:
    full = topic_log([snapshot_bytes(1)])
    consumers = iter([FakeConsumer({tp: r for tp, r in full.items() if tp.topic != ANALYTICS}),
                      FakeConsumer(full)])
    feed = run_feed(lambda: next(consumers))
    wait_until(lambda: scopes(feed) == 1, 5, 0.01, "the topics to appear")


def test_reconnect_resumes_where_it_stopped(run_feed: Callable[..., Feed]) -> None:
    log = topic_log([snapshot_bytes(i) for i in range(120)])
    first = FakeConsumer(log, fail_after_polls=1)  # one batch of 50, then the connection drops
    second = FakeConsumer(log)
    consumers = iter([first, second])
    feed = run_feed(lambda: next(consumers))
    wait_until(lambda: scopes(feed) == 120 and second.polls > 3, 5, 0.01, "all snapshots")
    assert first.closed
    assert second.seeks[TopicPartition(ANALYTICS, 0)] == 50
    assert feed.status()["applied"] == 120  # nothing applied twice


def test_stop_ends_the_thread_even_while_waiting_to_retry() -> None:
    calls = threading.Event()

    def factory() -> Any:
        calls.set()
        raise KafkaError("down")

    feed = Feed(KAFKA, DashboardState(), consumer_factory=factory, backoff=(30, 30))
    feed.start()
    feed.start()  # idempotent
    assert calls.wait(5)
    started = time.monotonic()
    feed.stop()
    assert not feed.running and time.monotonic() - started < 5
    assert feed.status()["error"] == "KafkaError: down"


def test_dead_letters_are_counted_from_the_start_of_their_topics(run_feed: Callable[..., Feed]) -> None:
    log = topic_log([snapshot_bytes(i) for i in range(3)], dead_letters=12)
    consumer = FakeConsumer(log)
    feed = run_feed(lambda: consumer)
    wait_until(lambda: feed.snapshot()["dead_letters"]["total"] == 12, 5, 0.01, "every dead letter counted")
    assert consumer.seeks[TopicPartition(DETAILS_DLQ, 0)] == 0
    dead = feed.snapshot()["dead_letters"]
    assert dead["topics"] == {"order_details.dlq": 12}  # named without the prefix
    assert dead["recent"][0] == {"topic": "order_details.dlq", "partition": 0, "offset": 11,
                                 "at": "2025-02-19T21:20:00+00:00", "error": "not JSON #11",
                                 "source": f"{DETAILS}[0]@11"}
    assert feed.status()["skipped"] == 0  # dead letters are counted, not parsed
