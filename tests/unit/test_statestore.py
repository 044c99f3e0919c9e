"""The replica's state file (orderflow.statestore), on its own: SQLite only, no Kafka."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orderflow.statestore import KEYS_PER_STATEMENT, StateStore, StateUnreadable, _lookups, state_file


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "group-replica.sqlite3"


def test_a_new_file_knows_nothing_and_keeps_what_a_transaction_wrote(path: Path) -> None:
    with StateStore.open(path) as state:
        assert state.checkpoint("up_to", 0) is None
        assert state.find("decided", {0: {"a"}}) == {}
        with state.transaction() as tx:
            tx.add("decided", 0, ["a", "b"])
            tx.add("decided", 1, ["c"])
            tx.advance("up_to", 0, 12)
    with StateStore.open(path) as state:  # and after a reopen
        assert state.checkpoint("up_to", 0) == 12
        assert state.checkpoint("up_to", 1) is None
        assert state.find("decided", {0: ["a", "c", "x"], 1: ["a", "c"]}) == {0: {"a": None}, 1: {"c": None}}
        assert state.find("other", {0: ["a"]}) == {}, "spaces are apart"


def test_a_checkpoint_never_moves_back(path: Path) -> None:
    with StateStore.open(path) as state:
        for offset in (5, 9, 3):
            with state.transaction() as tx:
                tx.advance("up_to", 2, offset)
        assert state.checkpoint("up_to", 2) == 9


def test_a_failed_transaction_leaves_nothing(path: Path) -> None:
    with StateStore.open(path) as state:
        with pytest.raises(RuntimeError), state.transaction() as tx:
            tx.add("decided", 0, ["a"])
            tx.advance("up_to", 0, 7)
            raise RuntimeError("the Kafka commit failed")
        assert state.find("decided", {0: ["a"]}) == {}
        assert state.checkpoint("up_to", 0) is None


def test_values_are_put_replaced_and_removed(path: Path) -> None:
    with StateStore.open(path) as state:
        with state.transaction() as tx:
            tx.put("notes", 0, {"a": b"first", "b": b"kept"})
            tx.put("notes", 0, {"a": b"second"})
        assert state.find("notes", {0: ["a", "b"]}) == {0: {"a": b"second", "b": b"kept"}}
        with state.transaction() as tx:
            tx.remove("notes", 0, ["a", "missing"])
            tx.add("notes", 0, ["b"])  # adding a key that is there keeps its value
        assert state.find("notes", {0: ["a", "b"]}) == {0: {"b": b"kept"}}


def test_a_batch_is_looked_up_in_one_statement_through_the_primary_key(path: Path) -> None:
    batch = {p: [f"o{p}-{i}" for i in range(KEYS_PER_STATEMENT // 4)] for p in range(4)}
    statements = list(_lookups("decided", batch))
    assert len(statements) == 1
    with StateStore.open(path) as state:
        with state.transaction() as tx:
            for p in range(4):
                tx.add("decided", p, [f"o{p}-{i}" for i in range(0, 5000, 7)])
    sql, params = statements[0]
    with sqlite3.connect(path) as db:
        plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SCAN" not in plan, plan
    assert plan.count("USING PRIMARY KEY (space=? AND part=? AND key=?)") == 4, plan


def test_a_lookup_larger_than_one_statement_finds_everything(path: Path) -> None:
    keys = {p: [f"k{i}" for i in range(p, 2 * KEYS_PER_STATEMENT, 3)] for p in range(3)}
    assert len(list(_lookups("s", keys))) > 1
    with StateStore.open(path) as state:
        with state.transaction() as tx:
            for p, wanted in keys.items():
                tx.add("s", p, wanted[::2])
        found = state.find("s", keys)
    assert {p: set(v) for p, v in found.items()} == {p: set(wanted[::2]) for p, wanted in keys.items()}


def test_two_handles_on_one_file_see_each_others_commits(path: Path) -> None:
    """A replica and the zombie it fences may hold the same file for a moment."""
    with StateStore.open(path) as first, StateStore.open(path) as second:
        with first.transaction() as tx:
            tx.add("decided", 0, ["a"])
            tx.advance("up_to", 0, 4)
        with second.transaction() as tx:
            tx.add("decided", 0, ["b"])
            tx.advance("up_to", 0, 3)
        assert set(first.find("decided", {0: ["a", "b"]})[0]) == {"a", "b"}
        assert second.checkpoint("up_to", 0) == 4


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""], ids=["garbage", "empty"])
def test_an_unreadable_file_is_moved_aside_and_started_afresh(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with StateStore.open(path) as state:
        assert state.checkpoint("up_to", 0) is None
        with state.transaction() as tx:
            tx.advance("up_to", 0, 1)
    if content:
        assert path.with_name(path.name + ".unreadable").read_bytes() == content


def test_a_file_of_another_layout_is_rebuilt(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE something_else (x)")
    with StateStore.open(path) as state:
        assert state.checkpoint("up_to", 0) is None
    assert path.with_name(path.name + ".unreadable").exists()


def test_damage_found_while_running_moves_the_file_aside(path: Path) -> None:
    with StateStore.open(path) as state:
        with state.transaction() as tx:
            for p in range(3):
                tx.add("decided", p, [f"order-{p}-{i:06d}" for i in range(3000)])
                tx.advance("up_to", p, 3000)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
    data = bytearray(path.read_bytes())
    for start in range(3 * page, len(data) - page, 2 * page):  # every other page past the schema
        data[start:start + page] = b"\xff" * page
    path.write_bytes(bytes(data))
    state = StateStore.open(path)
    with pytest.raises(StateUnreadable):
        for p in range(3):
            state.find("decided", {p: [f"order-{p}-{i:06d}" for i in range(0, 3000, 50)]})
    assert not path.exists() and path.with_name(path.name + ".unreadable").exists()
    with StateStore.open(path) as fresh:
        assert fresh.checkpoint("up_to", 0) is None


def test_a_file_filled_from_a_topic_since_made_again_is_emptied(path: Path) -> None:
    with StateStore.open(path) as state:
        assert state.bind({"t.order_details": "id-1"}) is False
        with state.transaction() as tx:
            tx.add("decided", 0, ["a"])
            tx.advance("up_to", 0, 10)
        assert state.bind({"t.order_details": "id-1", "t.email_sent_log": "id-2"}) is False, "a new name is added"
        assert state.checkpoint("up_to", 0) == 10
        assert state.bind({"t.order_details": "id-3"}) is True, "the same name, another topic"
        assert state.checkpoint("up_to", 0) is None
        assert state.find("decided", {0: ["a"]}) == {}
        assert state.bind({"t.order_details": "id-3", "t.email_sent_log": "id-2"}) is False


def test_the_file_is_named_by_group_and_replica(tmp_path: Path) -> None:
    assert state_file(tmp_path, "t1.transactions_backend", "host/1 a") == \
        tmp_path / "t1.transactions_backend-host_1_a.sqlite3"
