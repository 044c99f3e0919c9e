"""Topic provisioning: the pipeline's topics are created by the project, never by the broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from orderflow.kafka.backoff import Backoff
from orderflow.kafka.clients import make_admin, make_producer
from orderflow.kafka.errors import KafkaError, SaslAuthenticationFailedError, TopicAlreadyExistsError, describe
from orderflow.settings import KafkaSettings
from orderflow.topics import CO_PARTITIONED, TopicSpec, pipeline_topics

log = logging.getLogger(__name__)


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] | None = None,
                  timeout: float | None = 60.0) -> None:
    """Create the pipeline's topics if they are missing (idempotent, safe from several processes).

    Waits up to ``timeout`` s for the broker (None: as long as it takes; a wrong credential still
    fails at once). Existing topics are left as they are, so it then checks that the co-partitioned
    ones (``orderflow.topics.CO_PARTITIONED``) have one partition count, and raises ``RuntimeError`` if not.
    """
    wanted = list(specs) if specs is not None else pipeline_topics(settings.partitions, settings.topic_prefix)
    admin = _admin_once_reachable(settings, time.monotonic() + timeout if timeout is not None else None)
    try:
        existing = set(admin.list_topics())
        missing = {
            s.name: {"num_partitions": s.partitions, "replication_factor": settings.replication_factor,
                     "configs": s.configs}
            for s in wanted if s.name not in existing
        }
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topics are there
            log.info("created topics %s", sorted(missing))
        _check_co_partitioned(admin, [s.name for s in wanted if s.name.removeprefix(settings.topic_prefix)
                                     in CO_PARTITIONED])
    finally:
        admin.close()


def _admin_once_reachable(settings: KafkaSettings, deadline: float | None) -> Any:
    """An admin client, once the broker answers (by ``deadline``, or however long it takes when None).

    Whether it answers is asked with a producer: a KafkaAdminClient (or KafkaConsumer) that cannot
    bootstrap leaves its I/O thread running for good in kafka-python, a KafkaProducer leaves nothing,
    so waiting out a long outage does not pile up threads.
    """
    backoff = Backoff(0.5, 2.0)
    while True:
        # No attempt waits past the deadline (kafka-python's own default is 30 s).
        left = 30.0 if deadline is None else min(30.0, max(0.5, deadline - time.monotonic()))
        try:
            make_producer(settings, acks=1, enable_idempotence=False,
                          bootstrap_timeout_ms=int(left * 1000)).close(timeout=0)
            return make_admin(settings, bootstrap_timeout_ms=int(left * 1000))
        except KafkaError as exc:
            if isinstance(exc, SaslAuthenticationFailedError) or (deadline is not None and time.monotonic() > deadline):
                raise
            log.warning("broker not reachable yet (%s), retrying topic provisioning", describe(exc))
            backoff.wait(time.sleep)


def _check_co_partitioned(admin: Any, names: list[str]) -> None:
    """Raise ``RuntimeError`` unless the topics ``names`` all have the same number of partitions."""
    if not names:
        return
    admin.wait_for_topics(names)
    counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}={counts[name]}" for name in names)
        raise RuntimeError(f"co-partitioned topics have different partition counts ({shown}): an order_id must "
                           "land on the same partition number in each; recreate them with one count")
