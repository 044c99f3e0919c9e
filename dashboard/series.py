"""Bounded time series for the dashboard's charts: pure, no I/O, no clock of their own.

``PerSecond`` counts events per second of event time over a sliding window; ``Line`` keeps the last
values of one quantity (the analytics revenue) with at most one point per second. Both hold a fixed
maximum number of points however many events they are fed.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any


def epoch_second(when: datetime) -> int:
    return int(when.timestamp())


class PerSecond:
    """Counts per second for a few named series, kept for the last ``window`` seconds of event time."""

    def __init__(self, names: tuple[str, ...], window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1 second")
        self.names = names
        self.window = window
        self.latest: int | None = None
        self._buckets: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, name: str, when: datetime) -> None:
        second = epoch_second(when)
        if self.latest is not None and second <= self.latest - self.window:
            return  # older than the window: only the recent past is charted
        self._buckets.setdefault(second, [0] * len(self.names))[self.names.index(name)] += 1
        if self.latest is None or second > self.latest:
            self.latest = second
            cutoff = second - self.window
            for old in [s for s in self._buckets if s <= cutoff]:
                del self._buckets[old]

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """Dense columns (a zero for every quiet second) over the window ending at ``now`` or the latest event."""
        ends = [s for s in (self.latest, None if now is None else epoch_second(now)) if s is not None]
        if not ends:
            return {"t": [], **{name: [] for name in self.names}}
        end = max(ends)
        seconds = list(range(end - self.window + 1, end + 1))
        zero = [0] * len(self.names)
        columns = [self._buckets.get(s, zero) for s in seconds]
        return {"t": seconds, **{name: [c[i] for c in columns] for i, name in enumerate(self.names)}}


class Line:
    """The last ``points`` values of one quantity over time; later values in one second replace earlier ones."""

    def __init__(self, points: int) -> None:
        if points < 2:
            raise ValueError("a line needs room for at least 2 points")
        self._points: deque[tuple[int, str]] = deque(maxlen=points)

    def __len__(self) -> int:
        return len(self._points)

    def add(self, when: datetime, value: str) -> None:
        second = epoch_second(when)
        if self._points:
            last = self._points[-1][0]
            if second <= last:  # same second, or a clock behind: keep x increasing
                self._points.pop()
                second = last
        self._points.append((second, value))

    def to_json(self) -> dict[str, list[Any]]:
        return {"t": [t for t, _ in self._points], "v": [v for _, v in self._points]}
