"""``OrderStore``: the read side of the order store, for the orders API and the dashboard.

Every method is one or two index lookups (primary key, ``ix_orders_placed``, ``ix_orders_user``,
``ix_orders_email``, ``ix_orders_seq``), so each stays fast however many orders there are, and each
returns what the projector has committed so far. Errors of the database are raised as
``StoreUnavailable`` (retry later; an API answers 503) or ``StoreCorrupted``.

Read-your-writes for the orders API (what ``POST /order`` and ``GET /order/<id>?wait=`` need):
``publish`` gives the record's (partition, offset) in ``order_details``; ``wait_past(topic, partition,
offset, timeout)`` returns once the projector has stored everything up to and including it, and then
``get(order_id)`` shows that placement (``placed_event_id`` tells whether it, or an earlier one under
the same id, is the order; ``placed_json`` is the first one exactly as written, for a repeated POST).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, or_, select
from sqlalchemy.exc import DBAPIError

from orderflow.store.engine import make_engine, translated
from orderflow.store.migrate import migrate
from orderflow.store.rows import Cursor, OrderRow
from orderflow.store.schema import COUNTERS, SEQ, consumed_offsets, counters, orders
from orderflow.store.settings import StoreSettings

MAX_LIMIT = 1000  # rows per call at most
WAIT_FIRST_PAUSE = 0.01
WAIT_MAX_PAUSE = 0.1


def _newest_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(orders.c.placed_at.desc(), orders.c.order_id.desc())


def _bounded(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_LIMIT)


class OrderStore:
    """Reads of the order store; thread-safe (one engine, a connection per call). Make it where the
    process will use it (in ``create_app()``, so in each gunicorn worker after the fork), from
    ``StoreSettings`` read there; ``close()`` at exit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: StoreSettings, *, upgrade: bool = False, read_only: bool = False) -> OrderStore:
        """The store at ``settings.database_url``; ``upgrade`` first brings its schema to the newest
        revision (safe while the projector or other readers do the same); ``read_only``: never writes,
        not even to make a missing SQLite file (which is then ``StoreUnavailable``, as are tables not
        made yet). No connection is opened before the first call unless ``upgrade``."""
        if upgrade and read_only:
            raise ValueError("a read-only store cannot upgrade its schema")
        engine = make_engine(settings, read_only=read_only)
        if upgrade:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise translated(exc) from exc

    def _rows(self, query: Select[Any]) -> list[OrderRow]:
        with self._connection() as conn:
            return [OrderRow.from_mapping(m) for m in conn.execute(query).mappings()]

    def get(self, order_id: str) -> OrderRow | None:
        """The order's row, or ``None`` when no event of that id has been stored.

        A row may exist before its order does (an email outcome read first: ``row.order()`` is
        ``None``); an API should treat such a row as not found yet."""
        found = self._rows(select(orders).where(orders.c.order_id == order_id))
        return found[0] if found else None

    def offset(self, topic: str, partition: int) -> int:
        """The next offset of (``topic``, ``partition``) the projector will read: every record before it
        is in the store. 0 when it has stored none. ``topic`` is the full name (with any prefix)."""
        query = select(consumed_offsets.c.next_offset).where(consumed_offsets.c.topic == topic,
                                                             consumed_offsets.c.partition_id == partition)
        with self._connection() as conn:
            return int(conn.execute(query).scalar_one_or_none() or 0)

    def wait_past(self, topic: str, partition: int, offset: int, timeout: float) -> bool:
        """Whether the record at ``offset`` of (``topic``, ``partition``) is in the store, waiting up to
        ``timeout`` seconds for it (short sleeps between reads); ``False`` when the time is up."""
        deadline = time.monotonic() + timeout
        pause = WAIT_FIRST_PAUSE
        while self.offset(topic, partition) <= offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, WAIT_MAX_PAUSE)
        return True

    def counts(self) -> dict[str, int]:
        """``received`` (orders whose placement is stored), ``confirmed``, ``rejected``, ``emails_sent``,
        ``emails_failed``: exact, updated in the same transaction as the rows."""
        with self._connection() as conn:
            found = {name: value for name, value in conn.execute(select(counters.c.name, counters.c.value)
                                                                 .where(counters.c.name.in_(COUNTERS)))}
        return {name: int(found.get(name, 0)) for name in COUNTERS}

    def last_seq(self) -> int:
        """The change number of the latest write (0: none): where ``changed_since`` starts for a new reader."""
        with self._connection() as conn:
            return int(conn.execute(select(counters.c.value).where(counters.c.name == SEQ)).scalar_one_or_none() or 0)

    def latest(self, limit: int = 50) -> list[OrderRow]:
        """The newest orders by their time (``placed_at``), newest first; rows without an order yet are left out."""
        return self.page(None, limit)

    def page(self, before: Cursor | None = None, limit: int = 50) -> list[OrderRow]:
        """Newest first, from just after ``before`` (the ``cursor`` of the last row of the previous page;
        ``None``: from the newest). Keyset paging by (``placed_at``, ``order_id``): stable while orders arrive."""
        query = select(orders).where(orders.c.placed_at.is_not(None))
        if before is not None:
            at, order_id = before
            query = query.where(or_(orders.c.placed_at < at,
                                    and_(orders.c.placed_at == at, orders.c.order_id < order_id)))
        return self._rows(_newest_first(query).limit(_bounded(limit)))

    def changed_since(self, seq: int, limit: int = 500) -> list[OrderRow]:
        """Rows written after change number ``seq``, oldest change first: pass the last row's ``seq`` to go
        on. A row changed twice is returned once, at its latest change."""
        query = select(orders).where(orders.c.seq > seq).order_by(orders.c.seq).limit(_bounded(limit))
        return self._rows(query)

    def search(self, term: str, limit: int = 50) -> list[OrderRow]:
        """Orders whose ``order_id``, ``user_id`` or ``user_email`` is exactly ``term`` (case as written:
        an exact match uses the indexes), newest first."""
        term = term.strip()
        if not term:
            return []
        limit = _bounded(limit)
        found = {row.order_id: row for row in self._rows(select(orders).where(orders.c.order_id == term))}
        for column in (orders.c.user_id, orders.c.user_email):
            for row in self._rows(_newest_first(select(orders).where(column == term)).limit(limit)):
                found[row.order_id] = row
        ranked = sorted(found.values(), key=lambda r: (r.placed_at is not None, r.placed_at, r.order_id), reverse=True)
        return ranked[:limit]
