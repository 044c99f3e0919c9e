"""What the cluster is: its id, its brokers, who leads a partition and who coordinates a key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import CoordinatorNotAvailableError, NotCoordinatorError
from kafka.protocol.metadata import CoordinatorType

from orderflow.kafka.clients import make_admin
from orderflow.settings import KafkaSettings

CoordinatorKind = Literal["group", "transaction"]


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    brokers: tuple[int, ...]  # the live (unfenced) brokers' node ids
    registered: tuple[int, ...]  # every broker the cluster knows, live or fenced (stopped, unreachable)
    controller_id: int


def cluster_info(admin: Any) -> ClusterInfo:
    """The cluster an admin client reached, as the broker it asked describes it."""
    described = admin.describe_cluster()
    every = described["brokers"]
    live = sorted(int(b["broker_id"]) for b in every if not b.get("is_fenced", False))
    return ClusterInfo(str(described["cluster_id"]), tuple(live), tuple(sorted(int(b["broker_id"]) for b in every)),
                       int(described.get("controller_id", -1)))


def config_values(admin: Any, kind: Literal["broker", "topic"], name: str, keys: list[str]) -> dict[str, str]:
    """Effective values of ``keys`` for a broker (by node id) or a topic, defaults included."""
    resource_type = ConfigResourceType.BROKER if kind == "broker" else ConfigResourceType.TOPIC
    described = admin.describe_configs([ConfigResource(resource_type, name, keys)], config_filter="all")
    return {key: str(entry["value"]) for key, entry in described[kind][name].items() if key in keys}


def describe_cluster(settings: KafkaSettings, **overrides: Any) -> ClusterInfo:
    admin = make_admin(settings, **overrides)
    try:
        return cluster_info(admin)
    finally:
        admin.close()


def partition_leaders(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """Partition -> the node id of its leader (-1 while it has none)."""
    admin = make_admin(settings)
    try:
        [described] = admin.describe_topics([topic])
        return {int(p["partition_index"]): int(p["leader_id"]) for p in described["partitions"]}
    finally:
        admin.close()


def find_coordinator(settings: KafkaSettings, key: str, kind: CoordinatorKind, timeout: float = 30.0) -> int:
    """The node id coordinating a consumer group or a transactional id (a FindCoordinator request).

    Retried while the cluster has none to name: the first request creates ``__consumer_offsets`` or
    ``__transaction_state``, and a coordinator that died is named again once its partition moved.
    """
    key_type = CoordinatorType.TRANSACTION if kind == "transaction" else CoordinatorType.GROUP
    deadline = time.monotonic() + timeout
    while True:
        # A fresh client each time: the answer is cached per client and would hide a move.
        admin = make_admin(settings)
        try:
            # kafka-python 3.0 has no public FindCoordinator call; its admin client's own coroutine is
            # the only way to ask, run on the client's I/O thread as its public methods run theirs.
            return int(admin._manager.run(admin._find_coordinator_id, key, key_type))
        except (CoordinatorNotAvailableError, NotCoordinatorError):
            if time.monotonic() > deadline:
                raise
        finally:
            admin.close()
        time.sleep(0.3)
