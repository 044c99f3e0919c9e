"""``StoreWriter``: a batch of events folded into rows, counters and consumed offsets, in ONE transaction.

Exactly once into the store without a Kafka transaction: the offsets a batch moves are committed with
the rows it changed, so after any crash the store resumes from offsets that match its rows.

Every transaction starts by locking the ``seq`` counter (SQLite: ``BEGIN IMMEDIATE`` already holds the
write lock; PostgreSQL: ``SELECT ... FOR UPDATE``), so writers take turns and each reads the rows as
the previous one left them. It then checks that the stored offsets are the ones this writer last
saw; if another writer moved them (a second projector on the same store), ``OffsetsMoved`` is raised
and nothing is written: reload with ``offsets()`` and read again from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from orderflow.store.engine import translated
from orderflow.store.fold import LoggedEvent, counter_deltas, fold
from orderflow.store.rows import OrderRow
from orderflow.store.schema import COUNTERS, SEQ, consumed_offsets, counters, orders

TopicPartition = tuple[str, int]
CHUNK = 500  # ids per IN (...) list: well under SQLite's limit of bound parameters


class OffsetsMoved(Exception):
    """Another writer moved the stored offsets since this one read them."""


@dataclass(frozen=True)
class Applied:
    """What one batch did: rows written (new or changed) and how the counters moved."""

    rows: int
    deltas: dict[str, int]


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class StoreWriter:
    """The projector's side of the store. ``positions`` are (topic, partition) -> next offset to read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._offsets: dict[TopicPartition, int] = {}

    @property
    def known_offsets(self) -> dict[TopicPartition, int]:
        """The offsets as this writer last read or wrote them (no database call)."""
        return dict(self._offsets)

    def offsets(self) -> dict[TopicPartition, int]:
        """The stored offsets (read afresh: the writer's own view from now on)."""
        try:
            with self.engine.connect() as conn:
                self._offsets = self._read_offsets(conn)
        except DBAPIError as exc:
            raise translated(exc) from exc
        return dict(self._offsets)

    def apply(self, events: Sequence[LoggedEvent], positions: Mapping[TopicPartition, int]) -> Applied:
        """Fold ``events`` (in the order read) and store the rows, counters and ``positions``, all or nothing.
        Call ``offsets()`` once first: a writer checks the stored offsets against what it last saw."""
        try:
            with self.engine.begin() as conn:
                applied = self._apply(conn, events, positions)
        except DBAPIError as exc:
            raise translated(exc) from exc
        self._offsets.update(positions)
        return applied

    def _apply(self, conn: Connection, events: Sequence[LoggedEvent],
               positions: Mapping[TopicPartition, int]) -> Applied:
        last_seq = conn.execute(select(counters.c.value).where(counters.c.name == SEQ).with_for_update()).scalar_one()
        stored = self._read_offsets(conn)
        if stored != self._offsets:
            raise OffsetsMoved("another writer moved the order store's offsets")
        before = self._rows(conn, sorted({e.order_id for e in events}))
        after = dict(before)
        for logged in events:
            after[logged.order_id] = fold(after.get(logged.order_id), logged)
        changed = [row for order_id, row in after.items() if row != before.get(order_id)]
        deltas = dict.fromkeys(COUNTERS, 0)
        new_rows: list[dict[str, object]] = []
        updated_rows: list[dict[str, object]] = []
        for seq, row in enumerate(changed, start=last_seq + 1):
            for name, delta in counter_deltas(before.get(row.order_id), row).items():
                deltas[name] += delta
            values = {**row.as_values(), "seq": seq}
            (updated_rows if row.order_id in before else new_rows).append(values)
        if new_rows:
            conn.execute(insert(orders), new_rows)
        if updated_rows:
            conn.execute(update(orders).where(orders.c.order_id == bindparam("key")),
                         [{**values, "key": values["order_id"]} for values in updated_rows])
        moved = [{"counter": name, "delta": delta} for name, delta in deltas.items() if delta]
        if changed:
            moved.append({"counter": SEQ, "delta": len(changed)})
        if moved:
            conn.execute(update(counters).where(counters.c.name == bindparam("counter"))
                         .values(value=counters.c.value + bindparam("delta")), moved)
        self._store_offsets(conn, stored, positions)
        return Applied(len(changed), deltas)

    @staticmethod
    def _rows(conn: Connection, ids: Sequence[str]) -> dict[str, OrderRow]:
        rows: dict[str, OrderRow] = {}
        for chunk in _chunks(ids):
            for found in conn.execute(select(orders).where(orders.c.order_id.in_(chunk))).mappings():
                rows[found["order_id"]] = OrderRow.from_mapping(found)
        return rows

    @staticmethod
    def _read_offsets(conn: Connection) -> dict[TopicPartition, int]:
        return {(r.topic, r.partition_id): r.next_offset for r in conn.execute(select(consumed_offsets))}

    @staticmethod
    def _store_offsets(conn: Connection, stored: Mapping[TopicPartition, int],
                       positions: Mapping[TopicPartition, int]) -> None:
        new = [{"topic": tp[0], "partition_id": tp[1], "next_offset": o}
               for tp, o in positions.items() if tp not in stored]
        moved = [{"t": tp[0], "p": tp[1], "next_offset": o}
                 for tp, o in positions.items() if tp in stored and stored[tp] != o]
        if new:
            conn.execute(insert(consumed_offsets), new)
        if moved:
            conn.execute(update(consumed_offsets).where(consumed_offsets.c.topic == bindparam("t"),
                                                        consumed_offsets.c.partition_id == bindparam("p")), moved)
