"""The projector's progress lines: one at once, then one every interval, then one when done."""

from __future__ import annotations

import logging

import pytest

from order_projector.progress import Progress

ENDS = {("t.order_details", 0): 600, ("t.order_confirmed", 0): 400}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "order_projector.progress"]


def test_a_rebuild_says_how_far_it_is_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    progress = Progress(rebuilding=True, start={}, ends=ENDS, interval=5, clock=clock)
    progress.tick({}, 0)
    progress.tick({("t.order_details", 0): 100}, 100)  # within the interval: nothing
    clock.now += 5
    progress.tick({("t.order_details", 0): 300, ("t.order_confirmed", 0): 50}, 350)
    clock.now += 1
    progress.tick({("t.order_details", 0): 600, ("t.order_confirmed", 0): 400}, 1000)
    progress.tick({("t.order_details", 0): 700, ("t.order_confirmed", 0): 400}, 1100)  # done: nothing more
    assert lines(caplog) == [
        "rebuilding the order store from offset 0: 0 records read, 0 of 1000 offsets to the end offsets (0%)",
        "rebuilding the order store from offset 0: 350 records read, 350 of 1000 offsets to the end offsets (35%)",
        "rebuilding the order store from offset 0: done, 1000 records read in 6.0s, at the end offsets taken at "
        "the start (1000 offsets)",
    ]


def test_a_store_already_at_the_end_offsets_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    start = dict(ENDS)
    progress = Progress(rebuilding=False, start=start, ends=ENDS, interval=5, clock=Clock())
    progress.tick(start, 0)
    assert lines(caplog) == [] and progress.done


def test_catching_up_counts_from_the_stored_offsets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    start = {("t.order_details", 0): 500, ("t.order_confirmed", 0): 400}
    progress = Progress(rebuilding=False, start=start, ends=ENDS, interval=5, clock=Clock())
    progress.tick(start, 0)
    progress.tick({("t.order_details", 0): 600, ("t.order_confirmed", 0): 400}, 100)
    assert lines(caplog) == ["catching up: 0 records read, 0 of 100 offsets to the end offsets (0%)",
                             "catching up: done, 100 records read in 0.0s, at the end offsets taken at the start "
                             "(100 offsets)"]
