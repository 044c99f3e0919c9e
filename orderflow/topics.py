"""Topic names and their configuration: the map of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER_DETAILS = "order_details"
ORDER_CONFIRMED = "order_confirmed"
ORDER_EMAIL_SENT = "order_email_sent"
ANALYTICS_RESULT = "analytics_result"
EMAIL_SENT_LOG = "email_sent_log"
DLQ_SUFFIX = ".dlq"

# Keyed by order_id with one partition count, so an order lands on the same partition number in each.
CO_PARTITIONED = (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT, EMAIL_SENT_LOG)

# Consumer groups, one per stage.
TRANSACTIONS_GROUP = "transactions_backend"
EMAIL_GROUP = "email_backend"
ANALYTICS_GROUP = "analytics_backend"
# The order store's projector reads without a group (its offsets live in the store); this names it
# in the dead letters it writes.
PROJECTOR = "order_projector"


# Replicas of a topic: up to three, one per broker, as long as the cluster has brokers for them.
MAX_REPLICATION_FACTOR = 3


def replication_factor(brokers: int) -> int:
    """The replication factor a cluster of ``brokers`` live brokers gives the pipeline's topics."""
    return max(1, min(brokers, MAX_REPLICATION_FACTOR))


def min_insync_replicas(replicas: int) -> int:
    """Copies a write must reach before it counts: a majority from three replicas on, so one broker
    may be down without stopping writes; one below that (with two, requiring both would stop the
    pipeline whenever either broker is down)."""
    return 1 if replicas < 3 else replicas // 2 + 1


def dlq(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def pipeline_topics(partitions: int, prefix: str = "") -> list[TopicSpec]:
    """Every topic the pipeline needs, with its dead-letter topic for each consumed one.

    ``order_details``, ``order_confirmed`` and ``order_email_sent`` keep their records without a time
    limit (``retention.ms=-1``): the order store is rebuilt from them.

    ``CO_PARTITIONED`` (``order_details``, ``order_confirmed``, ``order_email_sent``, ``email_sent_log``)
    share the partition count so that one ``order_id`` lands on the same partition number in each.
    """
    keyed = [ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT]
    # The order topics keep every record for good: the order store is rebuilt from them from offset 0,
    # and POST /order's idempotency lasts as long as the store keeps the order. Not compaction: it keeps
    # the LAST record per key, and a racing repeat under one order_id would replace the first order.
    specs = [TopicSpec(prefix + name, partitions, {"retention.ms": "-1"}) for name in keyed]
    # What SMTP accepted, written outside any transaction right after the server's 250.
    specs.append(TopicSpec(prefix + EMAIL_SENT_LOG, partitions, {"cleanup.policy": "compact"}))
    specs.append(TopicSpec(prefix + ANALYTICS_RESULT, 1, {
        "cleanup.policy": "compact",
        "segment.ms": "60000",
        "min.cleanable.dirty.ratio": "0.1",
    }))
    specs += [TopicSpec(prefix + dlq(name), 1) for name in (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT)]
    return specs
