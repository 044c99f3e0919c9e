"""How far a rebuild or a catch-up has come, said in the log every few seconds until it is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Position = tuple[str, int]


class Progress:
    """Records read and offsets reached against the end offsets taken when reading started.

    ``rebuilding``: the store had no offsets (new, deleted or moved aside), so every record is read
    from offset 0. Otherwise the projector catches up from its stored offsets.
    """

    def __init__(self, *, rebuilding: bool, start: Mapping[Position, int], ends: Mapping[Position, int],
                 interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rebuilding = rebuilding
        self.start = dict(start)
        self.ends = dict(ends)
        self.interval = interval
        self.clock = clock
        self.began = clock()
        self.due = self.began  # the first line at once
        self.done = False
        self.total = sum(max(0, end - self.start.get(p, 0)) for p, end in self.ends.items())

    def tick(self, positions: Mapping[Position, int], records: int) -> None:
        """``positions``: where each partition stands now; ``records``: read since the start."""
        if self.done:
            return
        reached = sum(max(0, min(positions.get(p, 0), end) - self.start.get(p, 0)) for p, end in self.ends.items())
        what = "rebuilding the order store from offset 0" if self.rebuilding else "catching up"
        if reached >= self.total:
            self.done = True
            if self.rebuilding or self.total:
                log.info("%s: done, %d records read in %.1fs, at the end offsets taken at the start (%d offsets)",
                         what, records, self.clock() - self.began, self.total)
            return
        now = self.clock()
        if now >= self.due:
            self.due = now + self.interval
            log.info("%s: %d records read, %d of %d offsets to the end offsets (%d%%)", what, records, reached,
                     self.total, 100 * reached // self.total)
