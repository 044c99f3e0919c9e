"""How many copies the pipeline's topics keep, from the cluster's size and the settings."""

from __future__ import annotations

import pytest

from orderflow.kafka.provision import ClusterUnfit, Replication, check_transactions, plan_replication
from orderflow.settings import KafkaSettings
from orderflow.topics import min_insync_replicas, replication_factor


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_the_cluster_size_gives_the_replication(brokers: int, factor: int, min_insync: int) -> None:
    assert replication_factor(brokers) == factor and min_insync_replicas(factor) == min_insync
    assert plan_replication(KafkaSettings(), brokers) == Replication(factor, min_insync)


def test_a_majority_must_have_a_write_from_three_replicas_on() -> None:
    assert [min_insync_replicas(n) for n in (1, 2, 3, 4, 5)] == [1, 1, 2, 3, 3]


def test_settings_override_the_derived_replication() -> None:
    settings = KafkaSettings(replication_factor=2, min_insync_replicas=2)
    assert plan_replication(settings, 5) == Replication(2, 2)


def test_more_replicas_than_brokers_is_refused_naming_the_setting() -> None:
    with pytest.raises(ClusterUnfit, match="KAFKA_REPLICATION_FACTOR=3 needs 3 brokers; the cluster has 1"):
        plan_replication(KafkaSettings(replication_factor=3), 1)


def test_a_min_insync_above_the_replicas_is_refused() -> None:
    with pytest.raises(ClusterUnfit, match="KAFKA_MIN_INSYNC_REPLICAS=3 is more than the 1 replicas"):
        plan_replication(KafkaSettings(min_insync_replicas=3), 1)


def test_exactly_once_is_refused_where_the_transaction_log_cannot_be_kept() -> None:
    check_transactions(brokers=3, log_factor=3, log_min_isr=2)
    check_transactions(brokers=1, log_factor=1, log_min_isr=1)
    with pytest.raises(ClusterUnfit, match=r"KAFKA_EXACTLY_ONCE=true needs Kafka transactions.*"
                                           r"replication.factor=3 .* it has 1 broker\(s\).*KAFKA_EXACTLY_ONCE=false"):
        check_transactions(brokers=1, log_factor=3, log_min_isr=2)
    with pytest.raises(ClusterUnfit):
        check_transactions(brokers=3, log_factor=2, log_min_isr=3)
