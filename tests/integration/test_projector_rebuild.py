"""A store that is not a database, missing, or deleted under the running projector is rebuilt from the
order topics from offset 0, with its progress in the log; a file that is not a database is moved
aside, never deleted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderflow.settings import KafkaSettings
from orderflow.store import OrderStore, StoreSettings, StoreUnavailable
from tests.integration.test_projector import orders_stream
from tests.storecheck import ProjectorThread, assert_store_matches, caught_up
from tests.support import wait_until

pytestmark = pytest.mark.integration

GARBAGE = b"these bytes were never a database\n" * 200
PROGRESS = "rebuilding the order store from offset 0: "


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return tmp_path / "run" / "orders.sqlite3"


@pytest.fixture
def store(store_file: Path) -> Iterator[OrderStore]:
    reader = OrderStore.open(StoreSettings(database_url=f"sqlite:///{store_file}"))
    yield reader
    reader.close()


def readable_and_caught_up(kafka: KafkaSettings, store: OrderStore) -> bool:
    try:
        return caught_up(kafka, store)
    except StoreUnavailable:  # the file is being made again: no tables yet
        return False


def build(kafka: KafkaSettings, store_file: Path, store: OrderStore) -> None:
    with ProjectorThread(kafka, f"sqlite:///{store_file}"):
        wait_until(lambda: readable_and_caught_up(kafka, store), 120, what="the store to catch up")


def rebuilt_with_progress(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(PROGRESS)]
    assert lines, "no progress line"
    assert "records read" in lines[0] and "to the end offsets" in lines[0]
    assert lines[-1].startswith(PROGRESS + "done, ")
    return lines


def test_a_file_that_is_not_a_database_is_moved_aside_and_the_store_rebuilt(
        kafka_settings: KafkaSettings, store_file: Path, store: OrderStore, caplog: pytest.LogCaptureFixture) -> None:
    orders_stream(kafka_settings, "c", 25)
    store_file.parent.mkdir(parents=True, exist_ok=True)
    store_file.write_bytes(GARBAGE)
    caplog.set_level(logging.INFO)
    build(kafka_settings, store_file, store)
    aside = list(store_file.parent.glob("orders.sqlite3.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [GARBAGE]  # kept as it was, under a new name
    assert any("is not a readable database" in r.getMessage() and str(aside[0]) in r.getMessage()
               for r in caplog.records)
    rebuilt_with_progress(caplog)
    topics = assert_store_matches(kafka_settings, store)
    assert len(topics.orders) == 25


def test_a_damaged_database_file_is_moved_aside_and_rebuilt(
        kafka_settings: KafkaSettings, store_file: Path, store: OrderStore, caplog: pytest.LogCaptureFixture) -> None:
    orders_stream(kafka_settings, "d", 25)
    build(kafka_settings, store_file, store)
    store.close()  # damaged at rest: no connection holds its pages (or its WAL) open
    damaged = bytearray(store_file.read_bytes())
    damaged[100:4096] = b"\x00" * (4096 - 100)  # the first page's b-tree header: sqlite_master is unreadable
    store_file.write_bytes(bytes(damaged))
    caplog.set_level(logging.INFO)
    orders_stream(kafka_settings, "e", 5)
    build(kafka_settings, store_file, store)
    assert len(list(store_file.parent.glob("orders.sqlite3.corrupt-*"))) == 1
    rebuilt_with_progress(caplog)
    assert len(assert_store_matches(kafka_settings, store).orders) == 30


def test_a_missing_file_is_rebuilt_from_offset_0(kafka_settings: KafkaSettings, store_file: Path,
                                                 store: OrderStore, caplog: pytest.LogCaptureFixture) -> None:
    orders_stream(kafka_settings, "f", 20)
    build(kafka_settings, store_file, store)
    before = store.counts()
    store_file.unlink()
    caplog.set_level(logging.INFO)
    build(kafka_settings, store_file, store)
    lines = rebuilt_with_progress(caplog)
    everything = assert_store_matches(kafka_settings, store).records
    assert f"done, {everything} records read" in lines[-1]  # all of them, from offset 0
    assert store.counts() == before


def test_a_file_deleted_under_the_running_projector_is_rebuilt(
        kafka_settings: KafkaSettings, store_file: Path, store: OrderStore, caplog: pytest.LogCaptureFixture) -> None:
    orders_stream(kafka_settings, "g", 15)
    caplog.set_level(logging.INFO)
    with ProjectorThread(kafka_settings, f"sqlite:///{store_file}", progress_seconds=0.2):
        wait_until(lambda: caught_up(kafka_settings, store), 120, what="the store to catch up")
        store_file.unlink()
        wait_until(lambda: any("was deleted or replaced" in r.getMessage() for r in caplog.records), 60,
                   what="the projector to notice")
        orders_stream(kafka_settings, "h", 5)
        wait_until(lambda: store_file.exists() and readable_and_caught_up(kafka_settings, store), 120,
                   what="the store to be rebuilt")
    rebuilt_with_progress(caplog)
    assert len(assert_store_matches(kafka_settings, store).orders) == 20
