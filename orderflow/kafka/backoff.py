"""The one backoff every retry loop uses: a pause that doubles up to a ceiling, reset on success."""

from __future__ import annotations

from collections.abc import Callable


class Backoff:
    """``next()`` gives the pause before the next try; ``reset()`` after a success."""

    def __init__(self, first: float = 0.5, ceiling: float = 10.0) -> None:
        if first <= 0 or ceiling < first:
            raise ValueError("need 0 < first <= ceiling")
        self.first = first
        self.ceiling = ceiling
        self._next = first

    def next(self) -> float:
        pause = self._next
        self._next = min(self._next * 2, self.ceiling)
        return pause

    def reset(self) -> None:
        self._next = self.first

    def wait(self, sleep: Callable[[float], object]) -> float:
        """Pause with ``sleep`` (a stop flag's or an event's ``wait``) for the next interval; return it."""
        pause = self.next()
        sleep(pause)
        return pause
