"""Settings from the environment, typed and validated. Read once in ``main()``/``create_app()``."""

from __future__ import annotations

import logging
import socket
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

from orderflow.redact import RedactingFilter

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """``KAFKA_*``: where the cluster is and how the pipeline uses it."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", description="prepended to every topic name (test isolation, shared clusters)")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int | None = Field(None, ge=1, description="copies of each new topic; default: the "
                                           "cluster's brokers, at most 3")
    min_insync_replicas: int | None = Field(None, ge=1, description="copies a write needs before it counts; "
                                            "default: 2 from 3 replicas on, else 1")
    exactly_once: bool = Field(True, description="transactions for consume-transform-produce stages")
    max_batch: int = Field(500, ge=1, description="records per poll, and so per transaction")
    poll_timeout_ms: int = Field(100, ge=1, description="how long one poll waits for records")
    fetch_min_bytes: int = Field(65536, ge=1, description="a stage's fetch waits for this much data "
                                                          "(or fetch_max_wait_ms)")
    fetch_max_wait_ms: int = Field(50, ge=0, description="how long the broker may hold a stage's fetch for "
                                                        "fetch_min_bytes")
    retry_backoff_seconds: float = Field(2.0, ge=0, description="pause before retrying a batch whose edge was down")
    unassigned_rejoin_seconds: float = Field(20.0, gt=0, description="a member without partitions this long rejoins")
    session_timeout_ms: int = Field(10_000, ge=6000, description="a silent replica leaves its group after this")
    replica_id: str = Field(default_factory=socket.gethostname,
                            description="stable per replica; part of the transactional id")
    # How every client reaches the cluster: one place, read by orderflow.kafka.clients.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = Field(None, description="with SASL_*: PLAIN, SCRAM-SHA-256 or -512")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(None, description="PEM of the CA that signed the brokers' certificates")
    ssl_certfile: str | None = Field(None, description="client certificate (PEM), for brokers that ask for one")
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = Field(None, description="of KAFKA_SSL_KEYFILE, if it is encrypted")
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                                 + ", ".join(f"KAFKA_{name.upper()}" for name in missing))
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def as_env(self) -> dict[str, str]:
        """These settings as the ``KAFKA_*`` variables a service process reads them from."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "KAFKA_PARTITIONS": str(self.partitions),
            "KAFKA_REPLICA_ID": self.replica_id,
            "KAFKA_EXACTLY_ONCE": str(self.exactly_once).lower(),
            "KAFKA_MAX_BATCH": str(self.max_batch),
            "KAFKA_FETCH_MIN_BYTES": str(self.fetch_min_bytes),
            "KAFKA_FETCH_MAX_WAIT_MS": str(self.fetch_max_wait_ms),
            "KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            **{f"KAFKA_{name.upper()}": str(value) for name, value in (
                ("replication_factor", self.replication_factor), ("min_insync_replicas", self.min_insync_replicas),
                ("sasl_mechanism", self.sasl_mechanism), ("sasl_username", self.sasl_username),
                ("sasl_password", self.sasl_password.get_secret_value() if self.sasl_password else None),
                ("ssl_cafile", self.ssl_cafile), ("ssl_certfile", self.ssl_certfile),
                ("ssl_keyfile", self.ssl_keyfile),
                ("ssl_password", self.ssl_password.get_secret_value() if self.ssl_password else None))
                if value is not None},
            "KAFKA_SSL_CHECK_HOSTNAME": str(self.ssl_check_hostname).lower(),
        }


class ConsumerServiceSettings(BaseSettings):
    """What every consumer service shares: its group, its health file, its log level, its metrics.

    A service names its own default port in ``DEFAULT_METRICS_PORT``; ``<SERVICE>_METRICS_PORT`` overrides it.
    """

    DEFAULT_METRICS_PORT: ClassVar[int] = 0

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log_level: str = "INFO"
    health_file: str | None = Field(None, description="touched after every loop turn (liveness)")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus /metrics on this port; 0: off")
    metrics_host: str = Field("127.0.0.1", description="address /metrics listens on; this machine only by default")

    @model_validator(mode="after")
    def _default_metrics_port(self) -> ConsumerServiceSettings:
        if self.metrics_port is None:
            self.metrics_port = self.DEFAULT_METRICS_PORT
        return self


class StatefulServiceSettings(ConsumerServiceSettings):
    """A consumer that keeps its own state on disk beside its input offsets (``orderflow.statestore``)."""

    state_dir: str = Field(".run/state", description="folder of the replica's state file (relative: to the cwd)")


LogFormat = Literal["json", "text"]


class LogSettings(BaseSettings):
    """``LOG_FORMAT``, one for every service: ``json`` (one object per line) or ``text``."""

    model_config = SettingsConfigDict(env_prefix="LOG_")

    format: LogFormat = "json"


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def log_formatter(fmt: LogFormat) -> logging.Formatter:
    """JSON: time (UTC), level, logger, process, message, and every ``extra=`` field such as ``order_id``."""
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter("{levelname}{name}{process}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})


def configure_logging(level: str, client_level: str = "WARNING", fmt: LogFormat | None = None) -> None:
    """Root logging to stderr in ``fmt`` (default: ``LOG_FORMAT``); a no-op once configured."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(fmt or LogSettings().format))
    handler.addFilter(RedactingFilter())  # no full address or card number in any line, whoever logs it
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # kafka-python reports every reconnect at INFO, Alembic every look at the schema; our own code says
    # what matters.
    logging.getLogger("kafka").setLevel(client_level)
    logging.getLogger("alembic").setLevel(client_level)
