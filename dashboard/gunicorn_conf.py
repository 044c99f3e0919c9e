"""gunicorn settings for the dashboard, from ``DASHBOARD_*`` environment variables.

One worker on purpose: the view is held in that process's memory, fed by its reader threads.
Requests are served by the worker's threads (gthread); an open live stream holds one of them, so
``DASHBOARD_MAX_STREAMS`` stays below ``DASHBOARD_THREADS``.
"""

import signal
from typing import Any

from dashboard.settings import Settings
from orderflow.kafka import access_at_start
from orderflow.settings import configure_logging

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = 1
worker_class = "gthread"
threads = _settings.threads
timeout = 30
graceful_timeout = 10
control_socket_disable = True  # several gunicorns run side by side here
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


def on_starting(server: object) -> None:
    configure_logging(_settings.log_level)
    access_at_start(_settings.kafka)  # wrong credentials end the start here, with the setting to fix


def post_fork(server: object, worker: object) -> None:
    configure_logging(_settings.log_level)


def _feed(worker: Any) -> Any:
    return getattr(getattr(worker, "wsgi", None), "feed", None)


def post_worker_init(worker: Any) -> None:
    # Load the history before the first visitor asks (the thread starts after the fork, never at import).
    feed = _feed(worker)
    if feed is not None and _settings.feed_mode != "off":
        feed.start()
    # Live streams would hold a stopping worker for its whole graceful timeout: end them on SIGTERM.
    streams = getattr(getattr(worker, "wsgi", None), "streams", None)
    if streams is not None:
        stop_worker = signal.getsignal(signal.SIGTERM)

        def stop(signum: int, frame: Any) -> None:
            streams.close()
            if callable(stop_worker):
                stop_worker(signum, frame)

        signal.signal(signal.SIGTERM, stop)


def worker_exit(server: object, worker: Any) -> None:
    feed = _feed(worker)
    if feed is not None:
        feed.stop(timeout=5)  # closes the consumer
    store = getattr(getattr(worker, "wsgi", None), "store", None)
    if store is not None:
        store.close()
