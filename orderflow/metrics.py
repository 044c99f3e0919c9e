"""Prometheus metrics: every metric the services export, defined once, and how they are served.

| metric | type | labels | who |
|---|---|---|---|
| ``orders_received_total`` | counter | ``outcome``: created, duplicate, conflict, invalid, unavailable | orders API |
| ``orders_published_total`` | counter | | orders API |
| ``orders_publish_seconds`` | histogram | | orders API: time to the broker's ack |
| ``stage_records_processed_total`` | counter | ``stage`` | consumer stages: records read and committed |
| ``stage_dead_letters_total`` | counter | ``stage`` | records sent to ``<topic>.dlq`` |
| ``stage_commit_seconds`` | histogram | ``stage`` | committing a batch (transaction or offsets) |
| ``consumer_lag`` | gauge | ``stage``, ``topic``, ``partition`` | highwater minus position |
| ``order_verdicts_total`` | counter | ``status``: confirmed, rejected | transactions_backend |
| ``emails_sent_total``, ``emails_failed_total`` | counter | | email_backend |

Each service exports only its own: the metrics are defined unregistered and ``export(group)`` adds a
group to the default registry. The orders API runs several gunicorn workers: with
``PROMETHEUS_MULTIPROC_DIR`` set (its gunicorn config does it before any worker starts) each worker
writes its values to files there and ``exposition()`` adds them up. That variable must be set
before ``prometheus_client`` is imported.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

from orderflow.settings import ConsumerServiceSettings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = ("created", "duplicate", "conflict", "invalid", "unavailable")

ORDERS_RECEIVED = Counter("orders_received", "POST /order requests by outcome", ["outcome"], registry=None)
ORDERS_PUBLISHED = Counter("orders_published", "orders the broker acknowledged", registry=None)
PUBLISH_SECONDS = Histogram("orders_publish_seconds", "time from send to the broker's acknowledgement",
                            registry=None)

RECORDS_PROCESSED = Counter("stage_records_processed", "records read and committed by a stage", ["stage"],
                            registry=None)
DEAD_LETTERS = Counter("stage_dead_letters", "unreadable records sent to the dead-letter topic", ["stage"],
                       registry=None)
COMMIT_SECONDS = Histogram("stage_commit_seconds", "committing one batch: transaction or offsets", ["stage"],
                           registry=None)
CONSUMER_LAG = Gauge("consumer_lag", "records behind the end of the partition (highwater - position)",
                     ["stage", "topic", "partition"], multiprocess_mode="livemax", registry=None)

VERDICTS = Counter("order_verdicts", "orders decided, by verdict", ["status"], registry=None)
EMAILS_SENT = Counter("emails_sent", "confirmation emails the SMTP server accepted", registry=None)
EMAILS_FAILED = Counter("emails_failed", "confirmation emails given up on after the last attempt", registry=None)

ORDERS_API: tuple[Collector, ...] = (ORDERS_RECEIVED, ORDERS_PUBLISHED, PUBLISH_SECONDS)
STAGE: tuple[Collector, ...] = (RECORDS_PROCESSED, DEAD_LETTERS, COMMIT_SECONDS, CONSUMER_LAG)
TRANSACTIONS: tuple[Collector, ...] = (VERDICTS,)
EMAIL: tuple[Collector, ...] = (EMAILS_SENT, EMAILS_FAILED)
_exported: set[Collector] = set()


def export(*groups: tuple[Collector, ...]) -> None:
    """Add these metrics to what this process serves (idempotent)."""
    for collector in (c for group in groups for c in group):
        if collector not in _exported:
            REGISTRY.register(collector)
            _exported.add(collector)
    if ORDERS_RECEIVED in _exported:  # every outcome from the start (at 0), so rates and alerts have a series
        for outcome in OUTCOMES:
            ORDERS_RECEIVED.labels(outcome)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text format, or every worker's in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve(settings: ConsumerServiceSettings, *groups: tuple[Collector, ...]) -> bool:
    """Export ``groups`` and serve ``/metrics`` on the service's metrics address from a daemon thread;
    port 0 disables. A busy port is logged, not fatal: the pipeline matters more than its metrics.
    """
    export(*groups)
    port, host = settings.metrics_port, settings.metrics_host
    if not port:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics not served on port %d: %s", port, exc)
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True
