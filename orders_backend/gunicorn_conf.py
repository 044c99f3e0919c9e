"""gunicorn settings for the orders API, from ``ORDERS_*`` environment variables.

Prometheus multi-process mode: the workers share their metrics through files in
``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary folder per run unless the caller sets one (it must
then be emptied between runs). prometheus_client picks file-backed values when it is first imported,
so the folder is chosen first thing here, before this file imports anything that could import it.
"""

import os
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_own_metrics_dir: str | None = None


def prepare_metrics_dir() -> str:
    """The folder the workers' metrics go to: the caller's, or a fresh one removed at exit."""
    global _own_metrics_dir
    if not os.environ.get(MULTIPROC_ENV):
        _own_metrics_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="orders-metrics-")
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
    return os.environ[MULTIPROC_ENV]


prepare_metrics_dir()
# The rate limit's counters, shared by this API's workers, beside the metrics unless given.
os.environ.setdefault("ORDERS_RATE_LIMIT_STORAGE",
                      f"sqlite:///{os.path.join(os.environ[MULTIPROC_ENV], 'ratelimit.sqlite3')}")

import logging  # noqa: E402 - after the metrics folder is chosen (see above)
import shutil  # noqa: E402
import threading  # noqa: E402
from typing import Any  # noqa: E402

from prometheus_client import multiprocess  # noqa: E402

from orderflow import web  # noqa: E402
from orderflow.kafka import access_at_start, ensure_topics  # noqa: E402
from orderflow.settings import configure_logging  # noqa: E402
from orderflow.store import OrderStore  # noqa: E402
from orders_backend.settings import Settings  # noqa: E402

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = 30
graceful_timeout = 10
START_PROVISIONING_SECONDS = 5.0
control_socket_disable = True  # several gunicorns run side by side here
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


_provision_in_workers = False  # set when the master could not provision the topics


def on_starting(server: object) -> None:
    global _provision_in_workers
    configure_logging(_settings.log_level)
    access_at_start(_settings.kafka)  # wrong credentials end the start here, with the setting to fix
    # Briefly: a broker that is away must not keep the API from listening and answering 503 meanwhile.
    # Not on a thread of the master either: it forks the workers, and a fork while another thread works
    # with Kafka can leave a worker blocked on a lock that thread held. The workers take over instead.
    try:
        ensure_topics(_settings.kafka, timeout=START_PROVISIONING_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the API still starts; publishing answers 503 until Kafka is up
        _provision_in_workers = True
        logging.getLogger("orders_backend").warning("topics not provisioned at start (%s); the workers go on "
                                                    "trying", exc)
    try:  # the store's tables, so the workers can read before the projector's first start made them
        OrderStore.open(_settings.store, upgrade=True).close()
    except Exception as exc:  # noqa: BLE001 - the API still starts; lookups answer 503 until the store is there
        logging.getLogger("orders_backend").warning("order store not ready at start: %s", exc)


def _provision_topics() -> None:
    try:
        ensure_topics(_settings.kafka, timeout=None)
    except Exception as exc:  # noqa: BLE001 - the API still serves; publishing answers 503 until the topics exist
        logging.getLogger("orders_backend").warning("topics not provisioned: %s", exc)


def post_fork(server: object, worker: object) -> None:
    configure_logging(_settings.log_level)
    web.answer_gunicorn_errors_as_json()


def post_worker_init(worker: Any) -> None:
    # Connect this worker's producer now rather than on its first order, which would otherwise wait
    # for the connection, metadata and producer id. If the broker is down, the first order tries again.
    publisher = getattr(worker.wsgi, "publisher", None)  # None under bench/ladder_app's plain Flask apps
    if publisher is not None:
        threading.Thread(target=publisher.connect, name="kafka-connect", daemon=True).start()
    if _provision_in_workers:
        threading.Thread(target=_provision_topics, name="provision-topics", daemon=True).start()


def child_exit(server: object, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # unannotated upstream


def on_exit(server: object) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
