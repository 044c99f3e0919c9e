"""A local three-node KRaft cluster for the tests that kill brokers (``make test-cluster``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devtools.localcluster import LocalCluster
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from tests.support import free_port


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("cluster"), [free_port() for _ in range(3)],
                         [free_port() for _ in range(3)])
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
def cluster_settings(cluster: LocalCluster) -> KafkaSettings:
    """Settings whose topics and groups no other test shares; the topics exist."""
    settings = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers, topic_prefix=f"c{uuid.uuid4().hex[:10]}.",
                             partitions=3, replica_id=uuid.uuid4().hex[:8])
    ensure_topics(settings)
    return settings
