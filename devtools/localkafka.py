"""A real Apache Kafka broker for machines without Docker.

Formats KRaft storage once and runs one node that is both broker and controller, on Kafka's jars
from Maven Central (``devtools.kafkadist``). Used by ``make run`` (persistent data under
``.kafka/``) and by the tests (free ports, temporary folder). A start refuses ports another
process holds, stops a broker an earlier start on the same data left running, and is ready only
when the broker answering is this one (``devtools.brokerguard``).

    python -m devtools.localkafka fetch            # jars only
    python -m devtools.localkafka run [--data D]   # foreground until SIGINT/SIGTERM
"""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.brokerguard import PidFile, die_with_parent, hold, stop_process
from devtools.kafkadist import HOME, KAFKA_VERSION, LOG4J2, ROOT, fetch_jars
from devtools.kafkasecurity import SecureListener
from devtools.ports import LOWEST_PORT, ephemeral_start, free_port, port_holder
from orderflow.topics import min_insync_replicas

log = logging.getLogger(__name__)
__all__ = ["HOME", "KAFKA_VERSION", "LOWEST_PORT", "ROOT", "BrokerConflict", "LocalKafka", "Voter", "ephemeral_start",
           "fetch_jars", "free_port", "read_cluster_id", "stop_process"]

@dataclass(frozen=True)
class Voter:
    """A controller of a KRaft quorum as ``--initial-controllers`` names it."""

    node_id: int
    controller_port: int
    directory_id: str

    def __str__(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}:{self.directory_id}"


class BrokerConflict(RuntimeError):
    """Another process holds a port this broker needs, or answers on it for another cluster."""


def read_cluster_id(data_dir: Path) -> str | None:
    """The cluster id formatted into ``<data>/data/meta.properties``, if it is formatted."""
    try:
        lines = (data_dir / "data" / "meta.properties").read_text().splitlines()
    except OSError:
        return None
    return next((line.partition("=")[2].strip() for line in lines if line.startswith("cluster.id=")), None)


class LocalKafka:
    """One KRaft node (broker + controller) in ``data_dir``; storage is kept across restarts.

    Alone by default (``--standalone``); a node of a cluster with ``voters`` (every node's controller)
    and the cluster's ``cluster_id``. ``replicas`` is the replication factor of the internal topics.
    With ``die_with_parent`` the kernel kills the broker when the thread that started it ends.
    """

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int = 9093,
                 heap: str = "512m", home: Path = HOME, *, node_id: int = 1, voters: Sequence[Voter] = (),
                 cluster_id: str | None = None, replicas: int = 1, extra_properties: Sequence[str] = (),
                 listener: SecureListener | None = None, die_with_parent: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.home = home
        self.node_id = node_id
        self.voters = tuple(voters)
        self.cluster_id = cluster_id
        self.replicas = replicas
        self.extra_properties = tuple(extra_properties)
        self.listener = listener
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    def _properties(self) -> str:
        quorum = ",".join(f"127.0.0.1:{v.controller_port}" for v in self.voters) or \
            f"127.0.0.1:{self.controller_port}"
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.listener is not None:
            listeners += f",{self.listener.name}://127.0.0.1:{self.listener.port}"
            protocols += f",{self.listener.name}:{self.listener.name}"
        replicas, min_isr = str(self.replicas), str(min_insync_replicas(self.replicas))
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.bootstrap.servers={quorum}",
            f"listeners={listeners}",
            f"advertised.listeners={listeners}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            f"log.dirs={self.data_dir / 'data'}",
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min_isr}",
            "transaction.state.log.num.partitions=10",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={min_isr}",
            *(self.listener.properties() if self.listener is not None else []),
            *self.extra_properties,
            "",
        ])

    def _java(self, *args: str) -> list[str]:
        libs = fetch_jars(self.home)
        return ["java", *args, "-cp", f"{libs}/*"]

    def storage_tool(self, *args: str) -> str:
        done = subprocess.run([*self._java(), "kafka.tools.StorageTool", *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"StorageTool {args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout.strip()

    def _format(self) -> None:
        if read_cluster_id(self.data_dir) is not None:
            return
        cluster_id = self.cluster_id or self.storage_tool("random-uuid")
        quorum = ["--initial-controllers", ",".join(map(str, self.voters))] if self.voters else ["--standalone"]
        users = self.listener.format_args() if self.listener is not None else []
        self.storage_tool("format", "-t", cluster_id, "-c", str(self.properties_file), *quorum, *users)

    def _check_ports(self) -> None:
        ports = [self.port, self.controller_port] + ([self.listener.port] if self.listener is not None else [])
        for port in ports:
            holder = port_holder(port)
            if holder is not None:
                raise BrokerConflict(f"cannot start Kafka with data in {self.data_dir}: {holder.describe()}, not "
                                     "by this broker; stop that process or choose other ports")

    def launch(self) -> None:
        """Start the JVM without waiting for it: stop a leftover of this data, refuse taken ports, format once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self._properties())
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(LOG4J2)
        pid_file = PidFile(self.data_dir, str(self.properties_file))
        pid_file.stop_leftover()
        self._check_ports()
        self._format()
        out = open(self.data_dir / "kafka.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [*self._java(f"-Xmx{self.heap}", f"-Xms{self.heap}",
                         f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.data_dir}"),
             "kafka.Kafka", str(self.properties_file)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent() if self.die_with_parent else None,
        )
        out.close()
        pid_file.write(self.process.pid)

    def start(self, timeout: float = 90.0) -> LocalKafka:
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float, brokers: int = 1) -> None:
        """Block until this broker, not another on its port, serves metadata with itself and at least
        ``brokers`` live brokers in it."""
        # Local imports: `fetch` runs before the project's environment is complete.
        from orderflow.kafka import KafkaError, describe_cluster
        from orderflow.settings import KafkaSettings

        expected = read_cluster_id(self.data_dir)
        settings = KafkaSettings(bootstrap_servers=self.bootstrap_servers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; see {self.data_dir}/kafka.out")
            # Wait for the port first: a client that meets a closed port backs off for seconds.
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
                continue
            try:
                info = describe_cluster(settings, request_timeout_ms=3000, bootstrap_timeout_ms=5000,
                                        reconnect_backoff_max_ms=500)
            except (KafkaError, OSError):
                time.sleep(0.3)
                continue
            if info.cluster_id != expected:
                raise BrokerConflict(f"{self.bootstrap_servers} answers for cluster {info.cluster_id}, not for this "
                                     f"broker's {expected} (data in {self.data_dir}): another broker holds the port")
            if self.node_id in info.brokers and len(info.brokers) >= brokers:
                return
            time.sleep(0.3)
        raise TimeoutError(f"Kafka not ready on {self.bootstrap_servers} after {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)
            (self.data_dir / "broker.pid").unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop hard, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localkafka", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch", "run"])
    parser.add_argument("--data", type=Path, default=HOME / "run")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "fetch":
        log.info("Kafka jars in %s", fetch_jars())
        return 0
    broker = LocalKafka(args.data, args.port, args.controller_port)
    return hold(broker.start, lambda: broker.process is not None and broker.process.poll() is None, broker.stop,
                lambda: log.info("Kafka %s ready on %s (data in %s)", KAFKA_VERSION, broker.bootstrap_servers,
                                 args.data))

if __name__ == "__main__":
    sys.exit(main())
