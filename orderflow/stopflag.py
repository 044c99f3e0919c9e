"""The stop flag every long-running loop checks: set by SIGTERM/SIGINT, never by a crash."""

from __future__ import annotations

import signal
import time


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop finishes its batch and exits cleanly."""

    def __init__(self) -> None:
        self.stopped = False  # a plain flag: taking a lock inside a signal handler can deadlock

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self

    def set(self, *_: object) -> None:
        self.stopped = True

    def wait(self, seconds: float) -> bool:
        """Sleep, waking up within 0.1 s of a stop; True if stopped."""
        deadline = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.stopped
