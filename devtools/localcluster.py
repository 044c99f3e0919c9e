"""A local KRaft cluster of several combined nodes (broker + controller each), one cluster id.

Every node is formatted with the same cluster id and the same ``--initial-controllers`` (each
node's controller address and a fresh directory id): ``--standalone`` on each would make as many
one-node clusters. The internal topics get three replicas (fewer on a smaller cluster) and writes
count once a majority has them. Brokers that stop answering are fenced after three seconds instead
of Kafka's nine, so leaders and coordinators move within a few seconds of a node's death.

    python -m devtools.localcluster [--nodes 3] [--data D] [--ports P1,P2,P3 --controller-ports C1,C2,C3]
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devtools.brokerguard import hold
from devtools.localkafka import HOME, BrokerConflict, LocalKafka, Voter, read_cluster_id
from orderflow.topics import replication_factor

log = logging.getLogger(__name__)

FAILOVER_PROPERTIES = ("broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=750")


def kafka_uuid() -> str:
    """A random id in Kafka's text form (16 bytes, base64url without padding, never starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class LocalCluster:
    """``len(ports)`` nodes under ``data_dir``/node<N>, node ids 1..N; storage kept across restarts."""

    def __init__(self, data_dir: Path, ports: Sequence[int], controller_ports: Sequence[int],
                 heap: str = "384m", home: Path = HOME, *, die_with_parent: bool = True) -> None:
        if len(ports) != len(controller_ports) or not ports:
            raise ValueError("one broker port and one controller port per node")
        self.data_dir = Path(data_dir)
        dirs = [self.data_dir / f"node{i}" for i in range(1, len(ports) + 1)]
        formatted = [read_cluster_id(d) for d in dirs]
        if len(set(formatted)) > 1:
            raise BrokerConflict(f"the nodes under {self.data_dir} belong to different clusters ({formatted}); "
                                 "remove the folder to start afresh")
        cluster_id = formatted[0] or kafka_uuid()
        voters = [Voter(i, port, kafka_uuid()) for i, port in enumerate(controller_ports, 1)]
        self.nodes = [
            LocalKafka(d, port, cport, heap, home, node_id=i, voters=voters, cluster_id=cluster_id,
                       replicas=replication_factor(len(ports)), extra_properties=FAILOVER_PROPERTIES,
                       die_with_parent=die_with_parent)
            for i, (d, port, cport) in enumerate(zip(dirs, ports, controller_ports, strict=True), 1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> LocalKafka:
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 180.0) -> LocalCluster:
        """Start every node, then wait until each serves metadata that has all of them in it."""
        try:
            for node in self.nodes:
                node.launch()
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.wait_ready(max(1.0, deadline - time.monotonic()), brokers=len(self.nodes))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node at once (one by one, the last ones would wait for a quorum that left)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            node.stop(timeout)

    def kill(self, node_id: int) -> None:
        self.node(node_id).kill()

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a node again on its data, and wait until it is back among the live brokers."""
        node = self.node(node_id)
        node.launch()
        node.wait_ready(timeout, brokers=len(self.nodes))

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ports_list(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localcluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HOME / "cluster")
    parser.add_argument("--ports", type=ports_list, help="default 9092, 9094, ...")
    parser.add_argument("--controller-ports", type=ports_list, help="default 9093, 9095, ...")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ports = args.ports or [9092 + 2 * i for i in range(args.nodes)]
    cluster = LocalCluster(args.data, ports, args.controller_ports or [p + 1 for p in ports])
    return hold(cluster.start,
                lambda: all(n.process is not None and n.process.poll() is None for n in cluster.nodes), cluster.stop,
                lambda: log.info("Kafka cluster of %d ready on %s (data in %s)", len(ports), cluster.bootstrap_servers,
                                 args.data))

if __name__ == "__main__":
    sys.exit(main())
