"""Fixtures: a real Kafka broker per session, isolated topics per test, a real SMTP server, and an order
store database per test on SQLite and on a real PostgreSQL server (one per session, started on demand)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from orderflow.statestore import StateStore, state_file
from orderflow.store import OrderStore, StoreSettings
from tests.postgres import LocalPostgres, PostgresMissing
from tests.storecheck import ProjectorThread
from tests.support import LocalKafka, SmtpSink, free_port


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | None]:
    """A KRaft node on free ports in a temporary folder; or none when KAFKA_BOOTSTRAP_SERVERS is set."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafka | None) -> str:
    return kafka_broker.bootstrap_servers if kafka_broker else os.environ["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings whose topics and groups no other test shares; the topics exist."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=3,
        replica_id=uuid.uuid4().hex[:8],
    )
    ensure_topics(settings)
    return settings


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


OpenState = Callable[[KafkaSettings, str], StateStore]


@pytest.fixture
def open_state(tmp_path: Path) -> Iterator[OpenState]:
    """``open_state(settings, group)``: the state file of that group's replica ``settings.replica_id``
    in this test's own folder, as a service opens it; closed when the test ends."""
    opened: list[StateStore] = []

    def open_(settings: KafkaSettings, group: str) -> StateStore:
        opened.append(StateStore.open(state_file(tmp_path / "state", group, settings.replica_id)))
        return opened[-1]

    yield open_
    for state in opened:
        state.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A throw-away PostgreSQL server on a free port of 127.0.0.1 (tests/postgres.py)."""
    try:
        server = LocalPostgres(free_port())
    except PostgresMissing as exc:
        pytest.fail(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty order store database of its own for the test: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'orders.sqlite3'}"
        return
    server: LocalPostgres = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def projected_store(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[StoreSettings]:
    """An order store (SQLite, this test's own) kept up to date with ``kafka_settings``' order topics by a
    projector running in this process: what an orders API made in a test reads."""
    settings = StoreSettings(database_url=f"sqlite:///{tmp_path / 'store' / 'orders.sqlite3'}")
    OrderStore.open(settings, upgrade=True).close()  # its tables exist before anything reads it
    with ProjectorThread(kafka_settings, settings.database_url):
        yield settings
