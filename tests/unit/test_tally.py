"""The aggregated INFO line: ordinary outcomes counted, and logged together once per interval."""

from __future__ import annotations

import logging

import pytest

from orderflow.tally import Tally


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The tally's monotonic clock, set by the test: ``clock[0] = seconds``."""
    now = [100.0]
    monkeypatch.setattr("orderflow.tally.time.monotonic", lambda: now[0])
    return now


def test_outcomes_are_held_until_the_interval_has_passed(caplog: pytest.LogCaptureFixture,
                                                         clock: list[float]) -> None:
    caplog.set_level(logging.INFO, logger="test.tally")
    tally = Tally(logging.getLogger("test.tally"), "verdicts", every=10.0)
    for _ in range(3):
        tally.note("confirmed")
    tally.note("rejected")
    assert caplog.records == []  # nothing before ten seconds
    clock[0] = 110.5
    tally.note("confirmed")
    (line,) = caplog.records
    assert line.getMessage() == "verdicts in the last 10s: confirmed 4, rejected 1"
    assert line.__dict__["tally"] == {"confirmed": 4, "rejected": 1}
    clock[0] = 115.0
    tally.note("confirmed", 2)
    assert len(caplog.records) == 1  # counting starts afresh after each line
    clock[0] = 121.0
    tally.note("rejected")
    assert caplog.records[-1].__dict__["tally"] == {"confirmed": 2, "rejected": 1}


def test_nothing_is_logged_when_info_is_off(caplog: pytest.LogCaptureFixture, clock: list[float]) -> None:
    caplog.set_level(logging.WARNING, logger="test.tally.quiet")
    tally = Tally(logging.getLogger("test.tally.quiet"), "emails", every=1.0)
    tally.note("sent")
    clock[0] += 5.0
    tally.note("sent")
    assert caplog.records == []
