"""The order store on a real database, SQLite and PostgreSQL alike: migrations, the writer's one
transaction per batch, and every read the API and the dashboard use (each an index lookup)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, func, select, text

from orderflow.store import (
    COUNTERS,
    LoggedEvent,
    OffsetsMoved,
    OrderStore,
    StoreSettings,
    StoreWriter,
    counted,
    make_engine,
    migrate,
)
from orderflow.store.migrate import current, head
from orderflow.store.schema import consumed_offsets, metadata, orders
from tests.unit.test_store_fold import T0, email, placed, verdict

TOPIC = "t.order_details"


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(StoreSettings(database_url=store_url), writer=True)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(store_url: str, engine: Engine) -> Iterator[OrderStore]:
    reader = OrderStore.open(StoreSettings(database_url=store_url))
    yield reader
    reader.close()


def writer_for(engine: Engine) -> StoreWriter:
    writer = StoreWriter(engine)
    writer.offsets()
    return writer


def fill(writer: StoreWriter, count: int) -> list[LoggedEvent]:
    """``count`` orders o-000..: placed a minute apart (two share a time), every third rejected, every
    other one emailed; users u-0..u-2. Written in batches of 7 with the offsets they reach."""
    events: list[LoggedEvent] = []
    for i in range(count):
        order = placed(f"o-{i:03d}", price=f"{i + 1}.50", user_id=f"u-{i % 3}", email=f"user{i % 3}@example.com")
        minute = i if i != 5 else 4  # o-004 and o-005 share a time: order_id breaks the tie
        order = order.model_copy(update={"time": T0 + timedelta(minutes=minute)})
        events.append(LoggedEvent.of(order, order.to_bytes(), 0, i))
        decided = verdict(order, "rejected", "limit") if i % 3 == 0 else verdict(order)
        events.append(LoggedEvent.of(decided, decided.to_bytes(), 0, i))
        if i % 2 and decided.status == "confirmed":
            sent = email(order.order_id)
            events.append(LoggedEvent.of(sent, sent.to_bytes(), 0, i))
    for start in range(0, len(events), 7):
        writer.apply(events[start:start + 7], {(TOPIC, 0): start + 7})
    return events


def test_the_migrations_make_exactly_the_schema_the_code_declares(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert current(engine) == head()
    migrate(engine)  # again: nothing to do
    assert current(engine) == head()


def test_several_processes_may_migrate_at_once(store_url: str) -> None:
    engines = [make_engine(StoreSettings(database_url=store_url)) for _ in range(4)]
    errors: list[BaseException] = []

    def upgrade(engine: Engine) -> None:
        try:
            migrate(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and {current(e) for e in engines} == {head()}
    for e in engines:
        e.dispose()


def test_rows_counters_and_offsets_are_written_together(engine: Engine, store: OrderStore) -> None:
    writer = writer_for(engine)
    events = fill(writer, 30)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(orders)).scalar_one()
    assert rows == 30 and store.offset(TOPIC, 0) == (len(events) + 6) // 7 * 7
    expected = {name: sum(counted(store.get(f"o-{i:03d}"))[name] for i in range(30)) for name in COUNTERS}
    assert store.counts() == expected == {"received": 30, "confirmed": 20, "rejected": 10, "emails_sent": 10,
                                          "emails_failed": 0}
    # Redelivered events change nothing: no row, no counter, only the offset moves.
    seq = store.last_seq()
    assert writer.apply(events[:10], {(TOPIC, 0): 1000}).rows == 0
    assert store.counts() == expected and store.last_seq() == seq and store.offset(TOPIC, 0) == 1000


def test_a_second_writer_cannot_move_offsets_under_the_first(engine: Engine, store: OrderStore) -> None:
    first, second = writer_for(engine), writer_for(engine)
    order = placed("o-1")
    first.apply([LoggedEvent.of(order, order.to_bytes(), 0, 0)], {(TOPIC, 0): 1})
    with pytest.raises(OffsetsMoved):
        second.apply([LoggedEvent.of(verdict(order), verdict(order).to_bytes(), 0, 0)], {(TOPIC, 1): 1})
    assert store.get("o-1").status == "received" and store.offset(TOPIC, 1) == 0  # nothing of it was written
    second.offsets()  # reloaded: it may go on
    second.apply([], {(TOPIC, 1): 1})
    assert store.offset(TOPIC, 1) == 1


def test_get_gives_the_row_and_its_events(engine: Engine, store: OrderStore) -> None:
    events = [e for e in fill(writer_for(engine), 3) if e.order_id == "o-001"]  # placed, verdict, email
    row = store.get("o-001")
    assert row is not None and (row.status, row.email_status, row.total_cents, row.user_id) == \
        ("confirmed", "sent", 250, "u-1")
    assert row.placed_json == events[0].raw and row.placement() == events[0].event
    assert row.placed_at == T0 + timedelta(minutes=1) and row.placed_at.tzinfo is not None
    assert row.verdict() == events[1].event and row.email() == events[2].event
    assert store.get("o-404") is None


def test_latest_and_pages_go_newest_first_by_keyset(engine: Engine, store: OrderStore) -> None:
    fill(writer_for(engine), 23)
    newest_first = [f"o-{i:03d}" for i in reversed(range(23))]
    assert [r.order_id for r in store.latest(5)] == newest_first[:5]
    seen, cursor = [], None
    while True:
        page = store.page(cursor, limit=4)
        if not page:
            break
        seen += [r.order_id for r in page]
        cursor = page[-1].cursor
    assert seen == newest_first  # o-005 before o-004: same time, order_id decides
    with pytest.raises(ValueError):
        store.page(None, limit=0)


def test_search_finds_an_order_id_a_user_or_an_address_exactly(engine: Engine, store: OrderStore) -> None:
    fill(writer_for(engine), 9)
    assert [r.order_id for r in store.search("o-004")] == ["o-004"]
    assert [r.order_id for r in store.search("u-1")] == ["o-007", "o-004", "o-001"]
    assert [r.order_id for r in store.search(" user2@example.com ", limit=2)] == ["o-008", "o-005"]
    assert store.search("USER2@example.com") == [] and store.search("o-00") == [] and store.search("  ") == []


def test_changed_since_gives_each_changed_row_once_in_change_order(engine: Engine, store: OrderStore) -> None:
    writer = writer_for(engine)
    fill(writer, 6)
    start = store.last_seq()
    assert start > 0 and [r.seq for r in store.changed_since(0, limit=1000)] == sorted(r.seq for r in
                                                                                      store.changed_since(0))
    late = email("o-002", status="failed")  # o-002 is confirmed and not emailed yet
    writer.apply([LoggedEvent.of(late, late.to_bytes(), 0, 99)], {(TOPIC, 0): 100})
    changed = store.changed_since(start)
    assert [(r.order_id, r.email_status, r.seq) for r in changed] == [("o-002", "failed", start + 1)]
    assert store.changed_since(start + 1) == []
    assert len({r.order_id for r in store.changed_since(0)}) == 6


def test_wait_past_returns_once_the_offset_is_stored(engine: Engine, store: OrderStore) -> None:
    writer = writer_for(engine)
    assert store.wait_past(TOPIC, 2, 0, timeout=0) is False
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(store.wait_past(TOPIC, 2, 4, timeout=60)))
    waiter.start()
    writer.apply([], {(TOPIC, 2): 4})  # offsets 0..3 stored: not yet past 4
    assert store.offset(TOPIC, 2) == 4 and waiter.is_alive()
    writer.apply([], {(TOPIC, 2): 5})
    waiter.join(60)
    assert waited == [True] and store.wait_past(TOPIC, 2, 4, timeout=0) is True


def statements(engine: Engine) -> tuple[list[tuple[str, Any]], Any]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "orders" in sql:
            seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    return seen, record


def test_every_read_is_an_index_lookup(store_url: str, engine: Engine) -> None:
    """What keeps the reads fast at a million rows: no full scan of ``orders`` and no sort of it."""
    reader_engine = make_engine(StoreSettings(database_url=store_url))
    store = OrderStore(reader_engine)
    fill(writer_for(engine), 12)
    seen, _ = statements(reader_engine)
    store.get("o-001")
    store.latest(5)
    store.page(store.latest(5)[-1].cursor, 5)
    store.changed_since(3, 5)
    store.search("u-1")
    store.search("user1@example.com")
    store.offset(TOPIC, 0)
    assert len(seen) >= 8
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("SET enable_seqscan = off"))  # a small table: ask whether an index path exists
        for sql, params in seen:
            plan = "\n".join(str(line[-1]) for line in conn.exec_driver_sql(
                ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + sql, params))
            assert "Seq Scan" not in plan and "Sort" not in plan, f"{sql}\n{plan}"
            assert "TEMP B-TREE" not in plan and not any(
                line.strip().startswith("SCAN orders") and "INDEX" not in line for line in plan.splitlines()), \
                f"{sql}\n{plan}"
            scanned = [line for line in plan.splitlines() if "consumed_offsets" in line or "orders" in line]
            assert scanned, plan
    reader_engine.dispose()


def test_offsets_are_per_topic_and_partition(engine: Engine, store: OrderStore) -> None:
    writer = writer_for(engine)
    writer.apply([], {(TOPIC, 0): 3, ("t.order_confirmed", 0): 8})
    assert (store.offset(TOPIC, 0), store.offset("t.order_confirmed", 0), store.offset(TOPIC, 1)) == (3, 8, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consumed_offsets)).scalar_one() == 2
