"""Apache Kafka's jars from Maven Central, fetched once with Maven into ``.kafka/libs`` (cached in ~/.m2)."""

from __future__ import annotations

import logging
import os
import subprocess
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
