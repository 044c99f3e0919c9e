"""gunicorn settings for the orders API, from ``ORDERS_*`` environment variables."""

import logging

from orderflow.kafka_io import ensure_topics
from orderflow.settings import configure_logging
from orders_backend.settings import Settings

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
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
    try:
        ensure_topics(_settings.kafka, timeout=30)
    except Exception as exc:  # noqa: BLE001 - the API still starts; publishing answers 503 until Kafka is up
        logging.getLogger("orders_backend").warning("topics not provisioned at start: %s", exc)


def post_fork(server: object, worker: object) -> None:
    configure_logging(_settings.log_level)
