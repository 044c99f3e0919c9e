"""The order store: one row per order, the read model the orders API and the dashboard query.

The projector (``python -m order_projector``) is its only writer: it reads ``order_details``,
``order_confirmed`` and ``order_email_sent`` and commits rows, counters and its consumed offsets in one
database transaction per batch. Readers use ``OrderStore``. SQLite file by default, PostgreSQL when
``STORE_DATABASE_URL`` says so. No kafka-python here: Kafka is ``orderflow.kafka``'s business.

settings   ``StoreSettings`` (``STORE_*``)
schema     the tables (SQLAlchemy Core), the same on SQLite and PostgreSQL
rows       ``OrderRow``, the shape every reader gets
fold       the projection, pure: ``fold(row, event) -> row``, ``counter_deltas``
engine     engines from settings (SQLite pragmas), corruption, ``move_aside``
migrate    ``migrate(engine)``: Alembic to head, in-process (scripts in ``migrations/``)
writer     ``StoreWriter``: a batch, its counters and offsets in one transaction
reader     ``OrderStore``: get, offset, wait_past, counts, latest, page, changed_since, search
"""

from orderflow.store.engine import StoreCorrupted, StoreUnavailable, leftovers, make_engine, move_aside, sqlite_file
from orderflow.store.fold import LoggedEvent, StoreEvent, counted, counter_deltas, fold
from orderflow.store.migrate import migrate
from orderflow.store.reader import OrderStore
from orderflow.store.rows import Cursor, OrderRow
from orderflow.store.schema import COUNTERS
from orderflow.store.settings import StoreSettings
from orderflow.store.writer import Applied, OffsetsMoved, StoreWriter

__all__ = [
    "COUNTERS", "Applied", "Cursor", "LoggedEvent", "OffsetsMoved", "OrderRow", "OrderStore", "StoreCorrupted",
    "StoreEvent", "StoreSettings", "StoreUnavailable", "StoreWriter", "counted", "counter_deltas", "fold",
    "leftovers", "make_engine", "migrate", "move_aside", "sqlite_file",
]
