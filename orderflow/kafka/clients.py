"""Kafka clients made from settings: the only place that constructs a kafka-python client.

Every client gets the cluster's address and security settings from ``client_config``; the
producers count a write once every in-sync replica has it, the consumers commit nothing by
themselves and read only committed transactions.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.partitioner.default import murmur2

from orderflow.kafka.errors import BrokerUnavailable, KafkaError, KafkaTimeoutError
from orderflow.kafka.records import Record
from orderflow.settings import KafkaSettings

__all__ = [
    "KafkaAdminClient", "KafkaConsumer", "KafkaProducer", "OffsetAndMetadata", "Record", "TopicPartition",
    "client_config", "make_admin", "make_consumer", "make_producer", "offsets", "partition_for", "publish",
]


def client_config(settings: KafkaSettings, name: str = "orderflow") -> dict[str, Any]:
    """Address, identity and security of every client: the one place they are read."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": f"{name}-{settings.replica_id}",
        "security_protocol": settings.security_protocol,
        # kafka-python backs off reconnecting up to 30 s (with jitter), and that also holds back its
        # metadata refresh: a client would sit that long on a broker that is back. 1 s is the Java
        # client's ceiling.
        "reconnect_backoff_max_ms": 1000,
    }
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # the settings' validator requires it
        config.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                      sasl_plain_password=settings.sasl_password.get_secret_value())
    if settings.security_protocol.endswith("SSL"):
        config.update(ssl_cafile=settings.ssl_cafile, ssl_certfile=settings.ssl_certfile,
                      ssl_keyfile=settings.ssl_keyfile, ssl_check_hostname=settings.ssl_check_hostname,
                      ssl_password=settings.ssl_password.get_secret_value() if settings.ssl_password else None)
    return config


def make_producer(settings: KafkaSettings, *, transactional_id: str | None = None,
                  **overrides: Any) -> KafkaProducer:
    """A producer that only counts a write once every in-sync replica has it (acks=all, idempotent)."""
    config: dict[str, Any] = {
        **client_config(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        # 64 KiB instead of 16: a stage's batch goes out in fewer, fuller batches and kafka-python wakes
        # its I/O thread once per new batch (bench/README.md, "Tuning runs").
        "batch_size": 64 * 1024,
        "allow_auto_create_topics": False,
    }
    if transactional_id:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(settings: KafkaSettings, *, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """A consumer that commits nothing by itself and reads only committed transactions."""
    config: dict[str, Any] = {
        **client_config(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": settings.max_batch,
        # A topic created moments before may be missing from the first metadata answer; without a
        # refresh the group would sit on no partitions for the default five minutes.
        "metadata_max_age_ms": 10_000,
        "allow_auto_create_topics": False,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def make_admin(settings: KafkaSettings, **overrides: Any) -> KafkaAdminClient:
    return KafkaAdminClient(**{**client_config(settings, "orderflow-admin"), **overrides})


def publish(producer: KafkaProducer, topic: str, key: str, value: bytes, *, timeout: float,
            headers: list[tuple[str, bytes]] | None = None) -> tuple[int, int]:
    """Write one record and wait for the broker's acknowledgement; return (partition, offset)."""
    try:
        future = producer.send(topic, key=key.encode(), value=value, headers=headers)
        meta = future.get(timeout=timeout)
    except KafkaTimeoutError as exc:
        raise BrokerUnavailable(f"no acknowledgement within {timeout}s") from exc
    except KafkaError as exc:
        raise BrokerUnavailable(str(exc)) from exc
    return int(meta.partition), int(meta.offset)


def offsets(mapping: dict[TopicPartition, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    """Positions as the commit calls take them."""
    return {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in mapping.items()}


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)
