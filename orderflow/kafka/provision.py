"""Topic provisioning: the pipeline's topics are created by the project, never by the broker.

How many copies a topic keeps follows the cluster: the brokers it knows (live or not) decide the
replication factor (``orderflow.topics.replication_factor``: three from three brokers on) and the
copies a write needs before it counts (``min.insync.replicas``), unless ``KAFKA_REPLICATION_FACTOR``
and ``KAFKA_MIN_INSYNC_REPLICAS`` say otherwise. Exactly-once stages need Kafka's transactions: a
cluster whose transaction log cannot have the replicas it is configured for is refused up front,
since its transactions would only time out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orderflow.kafka.backoff import Backoff
from orderflow.kafka.clients import make_admin, make_producer
from orderflow.kafka.cluster import ClusterInfo, cluster_info, config_values
from orderflow.kafka.errors import KafkaError, SaslAuthenticationFailedError, TopicAlreadyExistsError, describe
from orderflow.settings import KafkaSettings
from orderflow.topics import CO_PARTITIONED, TopicSpec, min_insync_replicas, pipeline_topics, replication_factor

log = logging.getLogger(__name__)

TRANSACTION_LOG = ("transaction.state.log.replication.factor", "transaction.state.log.min.isr")


class ClusterUnfit(RuntimeError):
    """The cluster cannot keep what the settings ask of it."""


@dataclass(frozen=True)
class Replication:
    factor: int
    min_insync: int


def plan_replication(settings: KafkaSettings, brokers: int) -> Replication:
    """The replication of new topics on a cluster of ``brokers`` brokers; ``ClusterUnfit`` if impossible."""
    factor = settings.replication_factor or replication_factor(brokers)
    if factor > brokers:
        raise ClusterUnfit(f"KAFKA_REPLICATION_FACTOR={factor} needs {factor} brokers; the cluster has {brokers}")
    min_insync = settings.min_insync_replicas or min_insync_replicas(factor)
    if min_insync > factor:
        raise ClusterUnfit(f"KAFKA_MIN_INSYNC_REPLICAS={min_insync} is more than the {factor} replicas of each "
                           "topic: no write could ever be acknowledged")
    return Replication(factor, min_insync)


def check_transactions(brokers: int, log_factor: int, log_min_isr: int) -> None:
    """Refuse exactly-once on a cluster whose transaction log (``__transaction_state``) cannot be kept."""
    if log_factor > brokers or log_min_isr > log_factor:
        raise ClusterUnfit(
            f"KAFKA_EXACTLY_ONCE=true needs Kafka transactions, which this cluster cannot run: its brokers set "
            f"transaction.state.log.replication.factor={log_factor} and transaction.state.log.min.isr="
            f"{log_min_isr}, and it has {brokers} broker(s). Give the brokers settings their number can keep, "
            "or set KAFKA_EXACTLY_ONCE=false (at-least-once)")


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] | None = None,
                  timeout: float | None = 60.0) -> None:
    """Create the pipeline's topics if they are missing (idempotent, safe from several processes).

    Waits up to ``timeout`` s for the broker (None: as long as it takes; a wrong credential still
    fails at once). Existing topics are left as they are, so it then checks that the co-partitioned
    ones (``orderflow.topics.CO_PARTITIONED``) have one partition count, and raises ``RuntimeError`` if not;
    ``ClusterUnfit`` (a ``RuntimeError``) when the cluster cannot keep the replication asked for.
    """
    wanted = list(specs) if specs is not None else pipeline_topics(settings.partitions, settings.topic_prefix)
    admin = _admin_once_reachable(settings, time.monotonic() + timeout if timeout is not None else None)
    try:
        cluster = cluster_info(admin)
        plan = plan_replication(settings, len(cluster.registered))
        if settings.exactly_once:
            _check_transaction_log(admin, cluster)
        existing = set(admin.list_topics())
        missing = {
            s.name: {"num_partitions": s.partitions, "replication_factor": plan.factor,
                     "configs": {"min.insync.replicas": str(plan.min_insync), **s.configs}}
            for s in wanted if s.name not in existing
        }
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topics are there
            log.info("created topics %s (%d replicas, %d in sync for a write)", sorted(missing), plan.factor,
                     plan.min_insync)
        _check_existing(admin, [s.name for s in wanted if s.name in existing], plan)
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


def _check_transaction_log(admin: Any, cluster: ClusterInfo) -> None:
    asked = cluster.brokers[0] if cluster.brokers else cluster.controller_id
    values = config_values(admin, "broker", str(asked), list(TRANSACTION_LOG))
    check_transactions(len(cluster.registered), int(values[TRANSACTION_LOG[0]]), int(values[TRANSACTION_LOG[1]]))


def _check_existing(admin: Any, names: list[str], plan: Replication) -> None:
    """Refuse a topic no write can reach; warn of one with fewer copies than this cluster would give it."""
    if not names:
        return
    for topic in admin.describe_topics(names):
        replicas = min((len(p["replica_nodes"]) for p in topic["partitions"]), default=0)
        min_insync = int(config_values(admin, "topic", topic["name"], ["min.insync.replicas"])["min.insync.replicas"])
        if min_insync > replicas:
            raise ClusterUnfit(f"topic {topic['name']} has min.insync.replicas={min_insync} but {replicas} "
                               "replica(s): no write to it can be acknowledged; lower its min.insync.replicas")
        if replicas < plan.factor:
            log.warning("topic %s keeps %d replica(s) where this cluster gives new topics %d: reassign its "
                        "partitions for it to survive a broker's loss", topic["name"], replicas, plan.factor)


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
