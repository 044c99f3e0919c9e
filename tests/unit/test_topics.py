"""pipeline_topics(): the map of the pipeline's topics and their configuration."""

from __future__ import annotations

import pytest

from orderflow.topics import (
    ANALYTICS_RESULT,
    EMAIL_SENT_LOG,
    ORDER_CONFIRMED,
    ORDER_DETAILS,
    ORDER_EMAIL_SENT,
    TopicSpec,
    dlq,
    pipeline_topics,
)

# Topics a consumer reads (transactions: order_details; email and analytics: order_confirmed; the
# order store's projector: all three order topics).
CONSUMED = (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT)
# Keyed by order_id: one order lands on the same partition number in each.
CO_PARTITIONED = (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT, EMAIL_SENT_LOG)


def by_name(partitions: int = 6, prefix: str = "") -> dict[str, TopicSpec]:
    specs = pipeline_topics(partitions, prefix)
    named = {spec.name: spec for spec in specs}
    assert len(named) == len(specs), "a topic is listed twice"
    return named


def test_names() -> None:
    assert set(by_name()) == {
        "order_details", "order_confirmed", "order_email_sent", "email_sent_log", "analytics_result",
        "order_details.dlq", "order_confirmed.dlq", "order_email_sent.dlq",
    }


def test_dlq_name() -> None:
    assert dlq("t1.order_details") == "t1.order_details.dlq"


def test_every_name_carries_the_prefix() -> None:
    plain = by_name()
    prefixed = by_name(prefix="t9.")
    assert set(prefixed) == {f"t9.{name}" for name in plain}
    assert all(prefixed[f"t9.{name}"] == TopicSpec(f"t9.{name}", s.partitions, s.configs)
               for name, s in plain.items())


@pytest.mark.parametrize("partitions", [1, 3, 12])
def test_co_partitioned_topics_share_the_partition_count(partitions: int) -> None:
    topics = by_name(partitions)
    assert {topics[name].partitions for name in CO_PARTITIONED} == {partitions}


def test_analytics_result_is_compacted_with_one_partition() -> None:
    spec = by_name(6)[ANALYTICS_RESULT]
    assert spec.configs["cleanup.policy"] == "compact"
    assert spec.partitions == 1


def test_email_sent_log_is_compacted() -> None:
    assert by_name()[EMAIL_SENT_LOG].configs["cleanup.policy"] == "compact"


@pytest.mark.parametrize("topic", CONSUMED)
def test_consumed_topics_have_a_dead_letter_topic(topic: str) -> None:
    topics = by_name(prefix="p.")
    # The stage dead-letters to dlq(<prefixed input topic>): that name must be provisioned.
    assert dlq(f"p.{topic}") in topics
    assert topics[dlq(f"p.{topic}")].configs.get("cleanup.policy", "delete") == "delete"


def test_event_topics_keep_the_default_cleanup() -> None:
    topics = by_name()
    for name in (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT):
        assert "cleanup.policy" not in topics[name].configs



def test_order_topics_keep_their_history_for_the_order_store() -> None:
    """The order store is rebuilt from offset 0: nothing may expire, and nothing may be compacted away
    (compaction keeps a key's LAST record; the first placement under an order_id is the order)."""
    topics = by_name()
    for name in (ORDER_DETAILS, ORDER_CONFIRMED, ORDER_EMAIL_SENT):
        assert topics[name].configs["retention.ms"] == "-1"
