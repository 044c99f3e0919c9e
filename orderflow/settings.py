"""Settings from the environment, typed and validated. Read once in ``main()``/``create_app()``."""

from __future__ import annotations

import logging
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """``KAFKA_*``: where the cluster is and how the pipeline uses it."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", description="prepended to every topic name (test isolation, shared clusters)")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1)
    exactly_once: bool = Field(True, description="transactions for consume-transform-produce stages")
    max_batch: int = Field(500, ge=1, description="records per poll, and so per transaction")
    poll_timeout_ms: int = Field(100, ge=1, description="how long one poll waits for records")
    session_timeout_ms: int = Field(10_000, ge=6000, description="a silent replica leaves its group after this")
    replica_id: str = Field(default_factory=socket.gethostname,
                            description="stable per replica; part of the transactional id")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class ConsumerServiceSettings(BaseSettings):
    """What every consumer service shares: its group, its health file, its log level."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"
    health_file: str | None = Field(None, description="touched after every loop turn (liveness)")


def configure_logging(level: str, client_level: str = "WARNING") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
    # kafka-python reports every reconnect at INFO; our own loop says what matters.
    logging.getLogger("kafka").setLevel(client_level)
