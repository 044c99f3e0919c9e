"""ensure_topics against a real broker: idempotent, replicated as the cluster allows, and refuses
co-partitioned topics that disagree and clusters that cannot keep what the settings ask."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orderflow.kafka import ensure_topics, make_admin
from orderflow.kafka.cluster import config_values
from orderflow.kafka.provision import ClusterUnfit
from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_CONFIRMED, TopicSpec, pipeline_topics
from tests.support import LocalKafka, free_port

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


def test_new_topics_get_the_replication_of_a_one_broker_cluster(kafka_settings: KafkaSettings) -> None:
    admin = make_admin(kafka_settings)
    try:
        name = kafka_settings.topic(ORDER_CONFIRMED)
        [topic] = admin.describe_topics([name])
        assert {len(p["replica_nodes"]) for p in topic["partitions"]} == {1}
        configs = config_values(admin, "topic", name, ["min.insync.replicas"])
        assert configs == {"min.insync.replicas": "1"}
    finally:
        admin.close()


def test_more_replicas_than_brokers_is_refused(kafka_settings: KafkaSettings) -> None:
    other = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}rf2.",
                                              "replication_factor": 2})
    with pytest.raises(ClusterUnfit, match="KAFKA_REPLICATION_FACTOR=2 needs 2 brokers; the cluster has 1"):
        ensure_topics(other)


def test_a_topic_no_write_can_reach_is_refused(kafka_settings: KafkaSettings) -> None:
    other = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}isr."})
    confirmed = other.topic(ORDER_CONFIRMED)
    ensure_topics(other, [TopicSpec(confirmed, 3, {"min.insync.replicas": "2"})])  # by hand, on one broker
    with pytest.raises(ClusterUnfit, match=f"topic {confirmed} has min.insync.replicas=2 but 1 replica"):
        ensure_topics(other)


@pytest.mark.skipif(shutil.which("java") is None, reason="starts its own broker")
def test_exactly_once_is_refused_on_a_cluster_whose_transaction_log_it_cannot_keep(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="256m",
                        extra_properties=["transaction.state.log.replication.factor=3"]).start()
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="eos.", partitions=1)
        with pytest.raises(ClusterUnfit, match="KAFKA_EXACTLY_ONCE=true needs Kafka transactions"):
            ensure_topics(settings)
        ensure_topics(settings.model_copy(update={"exactly_once": False}))  # at-least-once needs none
    finally:
        broker.stop()
