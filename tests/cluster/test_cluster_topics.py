"""A three-node cluster as devtools.localcluster makes it: one cluster, three replicas, two for a write."""

from __future__ import annotations

import pytest

from devtools.localcluster import LocalCluster
from orderflow.kafka import describe_cluster, find_coordinator, make_admin
from orderflow.kafka.cluster import config_values
from orderflow.settings import KafkaSettings
from orderflow.topics import TRANSACTIONS_GROUP, pipeline_topics
from tests.support import wait_until

pytestmark = pytest.mark.cluster


def test_the_nodes_form_one_cluster_of_three(cluster: LocalCluster) -> None:
    seen = {describe_cluster(KafkaSettings(bootstrap_servers=node.bootstrap_servers)) for node in cluster.nodes}
    assert len({info.cluster_id for info in seen}) == 1
    assert all(info.brokers == (1, 2, 3) for info in seen)


def test_pipeline_and_internal_topics_have_three_replicas_and_need_two(cluster_settings: KafkaSettings) -> None:
    # Using a group and a transactional id makes the broker create its internal topics.
    find_coordinator(cluster_settings, cluster_settings.group(TRANSACTIONS_GROUP), "group")
    find_coordinator(cluster_settings, "probe", "transaction")
    names = [s.name for s in pipeline_topics(cluster_settings.partitions, cluster_settings.topic_prefix)]
    everything = [*names, "__consumer_offsets", "__transaction_state"]
    admin = make_admin(cluster_settings)
    try:
        def replicas() -> dict[str, set[int]]:
            return {t["name"]: {len(p["replica_nodes"]) for p in t["partitions"]}
                    for t in admin.describe_topics(everything)}

        # The internal topics are created by the first request that needs them, in the background.
        wait_until(lambda: all(replicas().values()), 60, what="the internal topics")
        assert replicas() == dict.fromkeys(everything, {3})
        for name in names:
            assert config_values(admin, "topic", name, ["min.insync.replicas"]) == {"min.insync.replicas": "2"}
        broker = config_values(admin, "broker", "1", ["transaction.state.log.min.isr", "min.insync.replicas",
                                                      "share.coordinator.state.topic.replication.factor"])
        assert broker == {"transaction.state.log.min.isr": "2", "min.insync.replicas": "2",
                          "share.coordinator.state.topic.replication.factor": "3"}
    finally:
        admin.close()
