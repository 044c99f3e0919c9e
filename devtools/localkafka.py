"""A real Apache Kafka broker for machines without Docker.

Fetches Kafka's jars from Maven Central with Maven (cached in ~/.m2 and in
``.kafka/libs``), formats KRaft storage once and runs one node that is both
broker and controller. Used by ``make run`` (persistent data under ``.kafka/``)
and by the tests (free ports, temporary folder).

    python -m devtools.localkafka fetch            # jars only
    python -m devtools.localkafka run [--data D]   # foreground until SIGINT/SIGTERM
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"
# Kafka's POM brings slf4j-api 1.7.x and log4j2 but no binding between them.
LOG4J_VERSION = "2.25.4"
ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("ORDERFLOW_KAFKA_HOME", ROOT / ".kafka"))

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.orderflow</groupId><artifactId>kafka-dist</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
"""


def fetch_jars(home: Path = HOME) -> Path:
    """Return the folder of Kafka's runtime classpath, fetching it with Maven once."""
    libs = home / "libs"
    stamp = libs / f".complete-{KAFKA_VERSION}"
    if stamp.exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(POM)
    log.info("fetching Apache Kafka %s from Maven Central", KAFKA_VERSION)
    subprocess.run(
        ["mvn", "-B", "-q", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        check=True,
    )
    stamp.touch()
    return libs


LOWEST_PORT = 20_000  # free_port() picks in [LOWEST_PORT, start of the ephemeral range)
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_ports = random.Random()  # its own generator, apart from the ``random`` module's shared state


def ephemeral_start(path: Path = EPHEMERAL_RANGE) -> int:
    """The first port of the range the kernel takes outgoing connections' local ports from."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(attempts: int = 50) -> int:
    """A TCP port free on 127.0.0.1 now, chosen at random below the ephemeral range.

    A port from the ephemeral range may be taken by some client's outgoing connection while its
    server is down (a broker being restarted) and then the server cannot bind it again; ports below
    that range are never handed out that way. The kernel's choice when none of those is free.
    """
    high = ephemeral_start()
    for _ in range(attempts if high > LOWEST_PORT else 0):
        port = _ports.randrange(LOWEST_PORT, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


class LocalKafka:
    """One KRaft node (broker + controller) in ``data_dir``; storage is kept across restarts."""

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int = 9093,
                 heap: str = "512m", home: Path = HOME) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.data_dir / 'data'}",
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=10",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "min.insync.replicas=1",
            "",
        ])

    def _java(self, *args: str) -> list[str]:
        libs = fetch_jars(self.home)
        return ["java", *args, "-cp", f"{libs}/*"]

    def start(self, timeout: float = 90.0) -> LocalKafka:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(self._properties())
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(LOG4J2)
        if not (self.data_dir / "data" / "meta.properties").exists():
            cluster_id = subprocess.run(
                [*self._java(), "kafka.tools.StorageTool", "random-uuid"],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
            subprocess.run(
                [*self._java(), "kafka.tools.StorageTool", "format", "--standalone",
                 "-t", cluster_id, "-c", str(props)],
                check=True, capture_output=True,
            )
        out = open(self.data_dir / "kafka.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [*self._java(f"-Xmx{self.heap}", f"-Xms{self.heap}",
                         f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.data_dir}"),
             "kafka.Kafka", str(props)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until the broker answers a metadata request from a real client."""
        # Local imports: `fetch` runs before the project's environment is complete.
        from orderflow.kafka import KafkaError, make_admin
        from orderflow.settings import KafkaSettings

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
                admin = make_admin(KafkaSettings(bootstrap_servers=self.bootstrap_servers), request_timeout_ms=3000,
                                   reconnect_backoff_max_ms=500)
                try:
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except (KafkaError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"Kafka not ready on {self.bootstrap_servers} after {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)

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
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    broker.start()
    log.info("Kafka %s ready on %s (data in %s)", KAFKA_VERSION, broker.bootstrap_servers, args.data)
    try:
        while not stopping and broker.process is not None and broker.process.poll() is None:
            time.sleep(0.5)
    finally:
        broker.stop()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
