"""ensure_topics against a real broker: idempotent, and refuses co-partitioned topics that disagree."""

from __future__ import annotations

import pytest

from orderflow.kafka import ensure_topics, make_admin
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_CONFIRMED, TopicSpec, pipeline_topics

pytestmark = pytest.mark.integration


def partition_counts(settings: KafkaSettings) -> dict[str, int]:
    names = [spec.name for spec in pipeline_topics(settings.partitions, settings.topic_prefix)]
    admin = make_admin(settings)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names) if t["error_code"] == 0}
    finally:
        admin.close()


def test_ensure_topics_is_idempotent(kafka_settings: KafkaSettings) -> None:
    before = partition_counts(kafka_settings)  # the fixture has provisioned them once
    assert len(before) == len(pipeline_topics(kafka_settings.partitions)) and set(before.values()) == {1, 3}
    ensure_topics(kafka_settings)
    ensure_topics(kafka_settings.model_copy(update={"partitions": 5}))  # existing topics are left as they are
    assert partition_counts(kafka_settings) == before


def test_co_partitioned_topics_with_different_counts_are_refused(kafka_settings: KafkaSettings) -> None:
    other = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}mismatch."})
    confirmed = other.topic(ORDER_CONFIRMED)
    ensure_topics(other, [TopicSpec(confirmed, 2)])  # made earlier, by hand, with another count
    with pytest.raises(RuntimeError, match="different partition counts") as raised:
        ensure_topics(other)
    message = str(raised.value)
    assert f"{confirmed}=2" in message and f"{other.topic('order_details')}=3" in message
    assert partition_counts(other)[confirmed] == 2  # nothing was changed
    with pytest.raises(RuntimeError):
        ensure_topics(other)  # and it stays refused
