"""dashboard.feed against an in-memory stand-in for the consumer: seeking, parsing, retrying."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from dashboard.feed import Feed
from dashboard.lag import LagWatcher
from dashboard.view import DashboardState
from orderflow.events import OrderDetails, OrderPlaced, OrderVerdict
from orderflow.kafka import KafkaError, TopicPartition
from orderflow.settings import KafkaSettings
from tests.support import wait_until

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


def order(i: int) -> OrderPlaced:
    return OrderPlaced(order_id=f"o{i}", user_id="u", user_email="ada@example.com",
                       order_details=OrderDetails(price=Decimal("10.00")), total=Decimal("10.00"),
                       time=datetime(2025, 3, 1, tzinfo=UTC))


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
        self.closed = False

    def partitions_for_topic(self, topic: str) -> set[int]:
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


def topic_log(details: Sequence[bytes | None], confirmed: Sequence[bytes | None] = (), emails: int = 0,
              analytics: int = 0, dead_letters: int = 0) -> dict[TopicPartition, list[FakeRecord]]:
    contents: dict[str, list[bytes | None]] = {
        DETAILS: list(details), CONFIRMED: list(confirmed), EMAILS: [b"{}"] * emails, ANALYTICS: [b"{}"] * analytics,
        CONFIRMED_DLQ: [], EMAILS_DLQ: []}
    log = {TopicPartition(topic, 0): [FakeRecord(topic, 0, i, v) for i, v in enumerate(values)]
           for topic, values in contents.items()}
    log[TopicPartition(DETAILS_DLQ, 0)] = [FakeRecord(DETAILS_DLQ, 0, i, b"\xff", dead_letter_headers(i))
                                           for i in range(dead_letters)]
    return log


@pytest.fixture
def run_feed() -> Iterator[Callable[..., Feed]]:
    feeds: list[Feed] = []

    def start(factory: Callable[[], Any], history: int = 200, backoff: tuple[float, float] = (0.01, 0.05),
              lag: LagWatcher | None = None) -> Feed:
        feed = Feed(KAFKA, DashboardState(), history=history, consumer_factory=factory, poll_timeout_ms=10,
                    backoff=backoff, lag=lag)
        feeds.append(feed)
        feed.start()
        return feed

    yield start
    for feed in feeds:
        feed.stop()
        assert not feed.running


@pytest.mark.parametrize(("begin", "end", "history", "expected"), [
    (0, 500, 200, 300),   # long topic: the last `history` offsets
    (0, 50, 200, 0),      # short topic: from the start
    (450, 500, 200, 450),  # retention moved the start past end - history
])
def test_history_is_the_tail_of_each_partition_and_all_of_analytics(
        run_feed: Callable[..., Feed], begin: int, end: int, history: int, expected: int) -> None:
    log = topic_log([order(i).to_bytes() for i in range(end)], analytics=3)
    tp = TopicPartition(DETAILS, 0)
    consumer = FakeConsumer(log, begin={tp: begin})
    feed = run_feed(lambda: consumer, history=history)
    wait_until(lambda: feed.connected and consumer.polls > 2, 5, 0.01, "the feed to poll")
    assert consumer.seeks[tp] == expected
    assert consumer.seeks[TopicPartition(ANALYTICS, 0)] == 0
    wait_until(lambda: feed.snapshot()["counts"]["received"] == end - expected, 5, 0.01, "history applied")


def test_unreadable_records_are_skipped_and_logged(run_feed: Callable[..., Feed],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    good = order(1)
    log = topic_log([b"not json", good.to_bytes(), None],
                    [OrderVerdict(order_id="o1", status="confirmed", order=good).to_bytes()], emails=1)
    consumer = FakeConsumer(log)
    with caplog.at_level(logging.WARNING, logger="dashboard.feed"):
        feed = run_feed(lambda: consumer)
        wait_until(lambda: feed.status()["skipped"] == 3 and feed.status()["applied"] == 2, 5, 0.01, "all read")
    state = feed.snapshot()
    assert state["counts"]["received"] == 1 and state["counts"]["confirmed"] == 1
    assert f"{DETAILS}[0]@0" in caplog.text and f"{DETAILS}[0]@2" in caplog.text and f"{EMAILS}[0]@0" in caplog.text
    assert feed.positions[TopicPartition(DETAILS, 0)] == 3


def test_broker_down_at_start_is_waited_out(run_feed: Callable[..., Feed]) -> None:
    attempts = []
    consumer = FakeConsumer(topic_log([order(1).to_bytes()]))

    def factory() -> FakeConsumer:
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise KafkaError("NoBrokersAvailable")
        return consumer

    feed = run_feed(factory, backoff=(0.05, 1.0))
    wait_until(lambda: feed.snapshot()["counts"]["received"] == 1, 5, 0.01, "the order after the outage")
    assert len(attempts) == 4 and feed.connected and feed.last_error is None
    gaps = [b - a for a, b in itertools.pairwise(attempts)]  # about 0.05, 0.1, 0.2 s
    assert gaps[0] >= 0.05 and gaps[2] > gaps[0] * 2  # backing off, not spinning


def test_missing_topics_are_waited_for(run_feed: Callable[..., Feed]) -> None:
    full = topic_log([order(1).to_bytes()])
    consumers = iter([FakeConsumer({tp: r for tp, r in full.items() if tp.topic != ANALYTICS}),
                      FakeConsumer(full)])
    feed = run_feed(lambda: next(consumers))
    wait_until(lambda: feed.snapshot()["counts"]["received"] == 1, 5, 0.01, "the topics to appear")


def test_reconnect_resumes_where_it_stopped(run_feed: Callable[..., Feed]) -> None:
    log = topic_log([order(i).to_bytes() for i in range(120)])
    first = FakeConsumer(log, fail_after_polls=1)  # one batch of 50, then the connection drops
    second = FakeConsumer(log)
    consumers = iter([first, second])
    feed = run_feed(lambda: next(consumers))
    wait_until(lambda: feed.snapshot()["counts"]["received"] == 120 and second.polls > 3, 5, 0.01, "all orders")
    assert first.closed
    assert second.seeks[TopicPartition(DETAILS, 0)] == 50
    assert feed.snapshot()["counts"]["received"] == 120  # nothing applied twice


def test_stop_ends_the_thread_even_while_waiting_to_retry() -> None:
    calls = threading.Event()

    def factory() -> Any:
        calls.set()
        raise KafkaError("down")

    feed = Feed(KAFKA, DashboardState(), history=10, consumer_factory=factory, backoff=(30, 30))
    feed.start()
    feed.start()  # idempotent
    assert calls.wait(5)
    started = time.monotonic()
    feed.stop()
    assert not feed.running and time.monotonic() - started < 5
    assert feed.status()["error"] == "KafkaError: down"



def test_dead_letters_are_counted_from_the_start_of_their_topics(run_feed: Callable[..., Feed]) -> None:
    log = topic_log([order(i).to_bytes() for i in range(30)], dead_letters=12)
    consumer = FakeConsumer(log)
    feed = run_feed(lambda: consumer, history=5)  # history bounds the orders read back, not the dead letters
    wait_until(lambda: feed.snapshot()["dead_letters"]["total"] == 12, 5, 0.01, "every dead letter counted")
    assert consumer.seeks[TopicPartition(DETAILS_DLQ, 0)] == 0 and consumer.seeks[TopicPartition(DETAILS, 0)] == 25
    dead = feed.snapshot()["dead_letters"]
    assert dead["topics"] == {"order_details.dlq": 12}  # named without the prefix
    assert dead["recent"][0] == {"topic": "order_details.dlq", "partition": 0, "offset": 11,
                                 "at": "2025-02-19T21:20:00+00:00", "error": "not JSON #11",
                                 "source": f"{DETAILS}[0]@11"}
    assert feed.status()["skipped"] == 0  # dead letters are counted, not parsed

