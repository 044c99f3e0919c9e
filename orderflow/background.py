"""A loop on a daemon thread of its own, started and stopped from outside (the dashboard's readers)."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """``start()`` runs ``_run`` on a daemon thread unless it runs already (idempotent, cheap, safe from
    several threads); ``stop()`` sets ``_stop``, which ``_run`` watches, and waits for the thread."""

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.running:
            return
        with self._start_lock:
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError
