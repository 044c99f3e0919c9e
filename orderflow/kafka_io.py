"""Kafka plumbing shared by every service: clients, topic provisioning, bounded reads.

Services never import ``kafka`` themselves; they go through this module and ``orderflow.stage``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from orderflow.settings import KafkaSettings
from orderflow.topics import CO_PARTITIONED, TopicSpec, pipeline_topics

log = logging.getLogger(__name__)

__all__ = [
    "BrokerUnavailable", "KafkaError", "OffsetAndMetadata", "Record", "TopicPartition", "ensure_topics", "group_lag",
    "make_admin", "make_consumer", "make_producer", "publish", "read_range", "read_topic",
]


class BrokerUnavailable(Exception):
    """The broker did not acknowledge a write in time: nothing may be promised to the caller."""


@dataclass(frozen=True)
class Record:
    """A record as read, independent of the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    @classmethod
    def of(cls, r: Any) -> Record:
        return cls(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)


def make_producer(settings: KafkaSettings, *, transactional_id: str | None = None,
                  **overrides: Any) -> KafkaProducer:
    """A producer that only counts a write once every in-sync replica has it (acks=all, idempotent)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        # 64 KiB instead of 16: a stage's batch goes out in fewer, fuller batches and kafka-python wakes its
        # I/O thread once per new batch (`make bench`: transactions_backend +20 %, a produce loop +30 %).
        "batch_size": 64 * 1024,
        "allow_auto_create_topics": False,
        "client_id": f"orderflow-{settings.replica_id}",
    }
    if transactional_id:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(settings: KafkaSettings, *, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """A consumer that commits nothing by itself and reads only committed transactions."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": settings.max_batch,
        # A topic created moments before may be missing from the first metadata answer; without a
        # refresh the group would sit on no partitions for the default five minutes.
        "metadata_max_age_ms": 10_000,
        "allow_auto_create_topics": False,
        "client_id": f"orderflow-{settings.replica_id}",
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def make_admin(settings: KafkaSettings, **overrides: Any) -> KafkaAdminClient:
    config: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers.split(","),
                              "client_id": f"orderflow-admin-{settings.replica_id}"}
    return KafkaAdminClient(**{**config, **overrides})


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
    return meta.partition, meta.offset


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec] | None = None,
                  timeout: float = 60.0) -> None:
    """Create the pipeline's topics if they are missing (idempotent, safe from several processes).

    Existing topics are left as they are, so it then checks that the co-partitioned ones
    (``orderflow.topics.CO_PARTITIONED``) have one partition count, and raises ``RuntimeError`` if not.
    """
    wanted = list(specs) if specs is not None else pipeline_topics(settings.partitions, settings.topic_prefix)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = make_admin(settings)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable yet, retrying topic provisioning")
            time.sleep(1)
    try:
        existing = set(admin.list_topics())
        missing = {
            s.name: {"num_partitions": s.partitions, "replication_factor": settings.replication_factor,
                     "configs": s.configs}
            for s in wanted if s.name not in existing
        }
        if missing:
            try:
                admin.create_topics(missing, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topics are there
            log.info("created topics %s", sorted(missing))
        _check_co_partitioned(admin, [s.name for s in wanted if s.name.removeprefix(settings.topic_prefix)
                                     in CO_PARTITIONED])
    finally:
        admin.close()


def _check_co_partitioned(admin: Any, names: list[str]) -> None:
    """Raise ``RuntimeError`` unless the topics ``names`` all have the same number of partitions."""
    if not names:
        return
    admin.wait_for_topics(names)
    counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{name}={counts[name]}" for name in names)
        raise RuntimeError(f"co-partitioned topics have different partition counts ({shown}): an order_id must "
                           "land on the same partition number in each; recreate them with one count")


def read_topic(settings: KafkaSettings, topic: str, *, partitions: Iterable[int] | None = None,
               timeout: float = 30.0) -> Iterator[Record]:
    """Every committed record of ``topic`` (or of some partitions), from the start up to its end now.

    Bounded: it stops at the end offsets taken when it starts, so it always terminates; ``TimeoutError``
    when it makes no progress for ``timeout`` seconds.
    """
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    try:
        if partitions is None:
            found = consumer.partitions_for_topic(topic) or set()
            partitions = sorted(found)
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return
        consumer.assign(tps)
        yield from read_range(consumer, consumer.beginning_offsets(tps), consumer.end_offsets(tps), timeout=timeout)
    finally:
        consumer.close()


def keys_by_partition(settings: KafkaSettings, topic: str, partitions: Iterable[int]) -> dict[int, set[str]]:
    """The keys of every committed record in each of ``partitions`` of ``topic``, in one read."""
    keys: dict[int, set[str]] = {p: set() for p in partitions}
    for r in read_topic(settings, topic, partitions=list(keys)):
        if r.key is not None:
            keys[r.partition].add(r.key.decode())
    return keys


def read_range(consumer: KafkaConsumer, start: dict[TopicPartition, int], end: dict[TopicPartition, int], *,
               timeout: float = 30.0) -> Iterator[Record]:
    """The committed records of the assigned partitions ``start`` names, from ``start`` up to ``end`` (excluded).

    ``TimeoutError`` after ``timeout`` seconds without progress (no record and no position moved), however
    long the whole read takes.
    """
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    positions = {tp: consumer.position(tp) for tp in start}
    deadline = time.monotonic() + timeout
    while any(positions[tp] < end[tp] for tp in positions):
        if time.monotonic() > deadline:
            topics = sorted({tp.topic for tp in positions})
            raise TimeoutError(f"reading {', '.join(topics)} made no progress for {timeout}s")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                if r.offset < end[tp]:
                    yield Record.of(r)
        before, positions = positions, {tp: consumer.position(tp) for tp in positions}
        if positions != before:
            deadline = time.monotonic() + timeout


def group_lag(settings: KafkaSettings, group: str, topic: str, *, admin: Any = None, consumer: Any = None,
              timeout_ms: int = 10_000) -> dict[int, int]:
    """Per partition of ``topic``, how many records ``group`` has not committed yet: end offset − committed.

    ``group`` and ``topic`` are the unprefixed names (``settings`` adds the prefix). A partition the group
    never committed counts from its first retained offset. The end offset is the last stable one (this
    consumer reads ``read_committed``), so an open transaction is not counted as lag. Clients are made
    and closed here unless given (the dashboard reuses its own).
    """
    own_admin, own_consumer = admin is None, consumer is None
    admin = make_admin(settings) if admin is None else admin
    try:
        consumer = make_consumer(settings, group_id=None) if consumer is None else consumer
        name = settings.topic(topic)
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not tps:
            return {}
        deadline = time.monotonic() + timeout_ms / 1000
        while True:  # a fresh cluster answers "coordinator not available" while it makes its offsets topic
            try:
                committed = admin.list_group_offsets({settings.group(group): tps}).get(settings.group(group), {})
                break
            except KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        begin, end = consumer.beginning_offsets(tps, timeout_ms), consumer.end_offsets(tps, timeout_ms)
        lag = {}
        for tp in tps:
            meta = committed.get(tp)
            done = max(meta.offset if meta is not None else -1, begin[tp])
            lag[tp.partition] = max(0, end[tp] - done)
        return lag
    finally:
        if own_consumer and consumer is not None:
            consumer.close(autocommit=False)
        if own_admin:
            admin.close()

