"""The broker's own ceiling: Kafka's ``ProducerPerformance`` and ``ConsumerPerformance`` at our record size.

``org.apache.kafka:kafka-tools`` is heavy (Connect, Jetty, Jersey), so it is fetched only for the bench,
into its own folder (``.kafka/tools-libs``), the same way ``devtools.localkafka`` fetches the broker.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path

from bench.common import Report, Samples, say
from devtools.kafkadist import HOME, KAFKA_VERSION, LOG4J_VERSION
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from orderflow.topics import TopicSpec

TOOLS_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.orderflow</groupId><artifactId>kafka-tools-dist</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""
QUIET_LOG4J = "status = error\nrootLogger.level = ERROR\n"


def fetch_tools(home: Path = HOME) -> Path:
    """Kafka's tools classpath in ``<home>/tools-libs``, fetched with Maven once (cached in ~/.m2 too)."""
    libs = home / "tools-libs"
    stamp = libs / f".complete-{KAFKA_VERSION}"
    if stamp.exists():
        return libs
    folder = home / "tools"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(TOOLS_POM)
    say(f"fetching org.apache.kafka:kafka-tools:{KAFKA_VERSION} from Maven Central")
    subprocess.run(["mvn", "-B", "-q", "-f", str(folder / "pom.xml"), "dependency:copy-dependencies",
                    "-DincludeScope=runtime", f"-DoutputDirectory={libs}"], check=True)
    stamp.touch()
    return libs


def _java(libs: Path, work: Path, main: str, *args: str, timeout: float = 180) -> str:
    log4j = work / "tools-log4j2.properties"
    log4j.write_text(QUIET_LOG4J)
    done = subprocess.run(["java", "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*", main,
                           *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{main} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


# "200000 records sent, 61236.3 records/sec (29.62 MB/sec), 101.83 ms avg latency, 429.00 ms max latency,
#  93 ms 50th, 203 ms 95th, 262 ms 99th, 393 ms 99.9th."
PRODUCER_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency.*?"
                           r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def producer_perf(libs: Path, work: Path, bootstrap: str, topic: str, payloads: Path, records: int) -> dict[str, float]:
    out = _java(libs, work, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                "--num-records", str(records), "--throughput", "-1", "--payload-file", str(payloads),
                "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true")
    found = PRODUCER_LINE.findall(out)
    if not found:
        raise RuntimeError(f"unexpected ProducerPerformance output: {out[-500:]}")
    _, rate, _, p50, _, p99 = found[-1]
    return {"rate": float(rate), "p50_ms": float(p50), "p99_ms": float(p99)}


def consumer_perf(libs: Path, work: Path, bootstrap: str, topic: str, records: int) -> dict[str, float]:
    config = work / "consumer.properties"
    config.write_text("isolation.level=read_committed\nauto.offset.reset=earliest\n")
    out = _java(libs, work, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
                "--topic", topic, "--messages", str(records), "--timeout", "60000",
                "--group", f"bench-perf-{uuid.uuid4().hex[:8]}", "--command-config", str(config))
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = dict(zip(header, (v.strip() for v in lines[-1].split(",")), strict=False))
    # fetch.nMsg.sec leaves out the group join (rebalance.time.ms), like the drain timings of the stages.
    return {"rate": float(values["fetch.nMsg.sec"]), "rate_with_join": float(values["nMsg.sec"])}


def run(report: Report, settings: KafkaSettings, work: Path, samples: Samples, *, rounds: int,
        records: int) -> None:
    libs = fetch_tools()
    payloads = work / "orders.payload"
    payloads.write_bytes(b"\n".join(v for _, v in samples.orders(1000, tag="p")))
    report.facts["order_bytes"] = len(samples.order)
    report.facts["verdict_bytes"] = len(samples.verdict)
    section = "1 broker ceiling (Kafka's Java perf tools)"
    produce = report.row(section, "ProducerPerformance acks=all",
                         note=f"{records} real orders of {len(samples.order)} B, {settings.partitions} partitions")
    consume = report.row(section, "ConsumerPerformance read_committed",
                         note="reads what ProducerPerformance wrote; group join left out")
    for r in range(rounds):
        topic = f"bench-perf-{int(time.time())}-{r}"
        ensure_topics(settings, [TopicSpec(topic, settings.partitions)])
        p = producer_perf(libs, work, settings.bootstrap_servers, topic, payloads, records)
        c = consumer_perf(libs, work, settings.bootstrap_servers, topic, records)
        for key, value in p.items():
            produce.fig(key).add(value)
        consume.fig("rate").add(c["rate"])
        say(f"broker ceiling round {r + 1}: produce {p['rate']:.0f}/s (p99 {p['p99_ms']:.0f} ms), "
            f"consume {c['rate']:.0f}/s")
