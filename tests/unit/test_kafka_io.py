"""orderflow.kafka.read_range over a stand-in consumer: its deadline counts time without progress."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from orderflow.kafka import TopicPartition, read_range

TP = TopicPartition("t", 0)


class SlowConsumer:
    """Hands out one record per poll, ``delay`` seconds apart; ``stall_at``: from that offset on, nothing."""

    def __init__(self, delay: float, stall_at: int | None = None) -> None:
        self.delay, self.stall_at, self.offset = delay, stall_at, 0

    def seek(self, tp: Any, offset: int) -> None:
        self.offset = offset

    def position(self, tp: Any) -> int:
        return self.offset

    def poll(self, timeout_ms: int) -> dict[Any, list[Any]]:
        if self.offset == self.stall_at:
            time.sleep(timeout_ms / 1000)
            return {}
        time.sleep(self.delay)
        record = SimpleNamespace(topic=TP.topic, partition=0, offset=self.offset, key=None, value=b"v",
                                 headers=[], timestamp=0)
        self.offset += 1
        return {TP: [record]}


def test_a_slow_read_that_keeps_moving_is_not_timed_out() -> None:
    started = time.monotonic()
    records = list(read_range(SlowConsumer(delay=0.05), {TP: 0}, {TP: 30}, timeout=1.0))
    assert [r.offset for r in records] == list(range(30))
    assert time.monotonic() - started > 1.0  # longer than the timeout in all


def test_a_read_that_stops_moving_times_out() -> None:
    with pytest.raises(TimeoutError, match="no progress"):
        list(read_range(SlowConsumer(delay=0.01, stall_at=3), {TP: 0}, {TP: 12}, timeout=0.3))
