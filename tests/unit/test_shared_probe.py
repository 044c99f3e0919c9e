"""SharedProbe: many threads, one broker round trip per burst, and never an answer from before a caller arrived."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orderflow.kafka import SharedProbe


class GatedProbe:
    """Counts calls; each call blocks until released, and returns its own number."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)
        self.fail_next = False

    def __call__(self, timeout: float) -> int:
        self.calls += 1
        number = self.calls
        self.started.release()
        assert self.gate.acquire(timeout=5)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError(f"call {number} failed")
        return number


def test_callers_that_arrive_during_a_call_share_the_next_one() -> None:
    probe = GatedProbe()
    shared = SharedProbe(probe)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(shared, 5)
        assert probe.started.acquire(timeout=5)  # call 1 is in flight
        later = [pool.submit(shared, 5) for _ in range(5)]
        time.sleep(0.1)  # they are all waiting now
        probe.gate.release()  # call 1 ends: its caller gets 1; one waiter starts call 2
        assert first.result(5) == 1
        assert probe.started.acquire(timeout=5)
        probe.gate.release()
        assert [f.result(5) for f in later] == [2] * 5  # not 1: call 1 started before they arrived
    assert probe.calls == 2


def test_a_lone_caller_gets_a_fresh_call_each_time() -> None:
    probe = GatedProbe()
    shared = SharedProbe(probe)
    for expected in (1, 2, 3):
        probe.gate.release()
        assert shared(5) == expected


def test_a_failed_call_fails_its_callers_and_the_next_call_is_made_afresh() -> None:
    probe = GatedProbe()
    shared = SharedProbe(probe)
    probe.fail_next = True
    probe.gate.release()
    with pytest.raises(ConnectionError, match="call 1"):
        shared(5)
    probe.gate.release()
    assert shared(5) == 2


def test_a_caller_waiting_on_a_stuck_call_times_out() -> None:
    probe = GatedProbe()
    shared = SharedProbe(probe)
    with ThreadPoolExecutor(2) as pool:
        stuck = pool.submit(shared, 5)
        assert probe.started.acquire(timeout=5)
        with pytest.raises(TimeoutError):
            shared(0.2)
        probe.gate.release()
        assert stuck.result(5) == 1


def test_an_interrupted_call_does_not_leave_later_callers_waiting() -> None:
    calls: list[int] = []

    def probe(timeout: float) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return len(calls)

    shared = SharedProbe(probe)
    with pytest.raises(KeyboardInterrupt):
        shared(5)
    assert shared(1) == 2


def test_a_caller_that_runs_the_probe_after_waiting_passes_on_only_its_remaining_time() -> None:
    probe = GatedProbe()
    budgets: list[float] = []

    def measured(timeout: float) -> int:
        budgets.append(timeout)
        return probe(timeout)

    shared = SharedProbe(measured)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(shared, 5)
        assert probe.started.acquire(timeout=5)
        second = pool.submit(shared, 2)
        time.sleep(0.5)  # the second caller spends a quarter of its budget waiting
        probe.gate.release()
        probe.gate.release()
        assert (first.result(5), second.result(5)) == (1, 2)
    assert budgets[0] > 4.9 and budgets[1] <= 1.6
