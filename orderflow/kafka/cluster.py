"""What the cluster is: its id, its brokers, who leads a partition and who coordinates a key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kafka.protocol.metadata import CoordinatorType

from orderflow.kafka.clients import make_admin
from orderflow.settings import KafkaSettings

CoordinatorKind = Literal["group", "transaction"]


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    brokers: tuple[int, ...]  # the live (unfenced) brokers' node ids
    controller_id: int


def cluster_info(admin: Any) -> ClusterInfo:
    """The cluster an admin client reached, as the broker it asked describes it."""
    described = admin.describe_cluster()
    live = sorted(int(b["broker_id"]) for b in described["brokers"] if not b.get("is_fenced", False))
    return ClusterInfo(str(described["cluster_id"]), tuple(live), int(described.get("controller_id", -1)))


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


def find_coordinator(settings: KafkaSettings, key: str, kind: CoordinatorKind) -> int:
    """The node id coordinating a consumer group or a transactional id (a FindCoordinator request)."""
    key_type = CoordinatorType.TRANSACTION if kind == "transaction" else CoordinatorType.GROUP
    admin = make_admin(settings)
    try:
        # kafka-python 3.0 has no public FindCoordinator call; its admin client's own coroutine is the
        # only way to ask, run on the client's I/O thread as its public methods run theirs. A fresh
        # client each time: the answer is cached per client and would hide a move.
        return int(admin._manager.run(admin._find_coordinator_id, key, key_type))
    finally:
        admin.close()
