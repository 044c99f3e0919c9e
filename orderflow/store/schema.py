"""The order store's tables, in SQLAlchemy Core: one schema for SQLite and PostgreSQL.

``orders``            one row per ``order_id`` with its latest state (see ``orderflow.store.rows.OrderRow``)
``consumed_offsets``  per (topic, partition) of the order topics: the next offset the projector will read
``counters``          exact counts kept in the projector's transaction, and ``seq``: the last change
                      number given to a row

The migrations (``orderflow/store/migrations``) create exactly this; a test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

# Named constraints and indexes, so that a later migration can name what it changes.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC. PostgreSQL keeps ``timestamptz``; SQLite text without an offset (always UTC,
    so its text sorts as time does). Reads give an aware ``datetime`` in UTC on both."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime has no place in the order store: {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID_LENGTH = 64  # orderflow.fields.ID_MAX
EMAIL_LENGTH = 320

orders = Table(
    "orders", metadata,
    Column("order_id", String(ID_LENGTH), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("user_id", String(ID_LENGTH)),
    Column("user_email", String(EMAIL_LENGTH)),
    Column("total_cents", BigInteger),
    Column("currency", String(3)),
    Column("placed_at", UtcDateTime),
    Column("decided_at", UtcDateTime),
    Column("emailed_at", UtcDateTime),
    Column("email_status", String(16)),
    Column("email_attempts", Integer),
    Column("email_error", Text),
    Column("placed_event_id", String(36)),
    Column("placed_partition", Integer),
    Column("placed_offset", BigInteger),
    Column("placed_json", Text),
    Column("verdict_json", Text),
    Column("email_json", Text),
)
Index("ix_orders_seq", orders.c.seq, unique=True)
# Newest first, keyset-paged by (placed_at, order_id); per user and per address in the same order.
Index("ix_orders_placed", orders.c.placed_at, orders.c.order_id)
Index("ix_orders_user", orders.c.user_id, orders.c.placed_at, orders.c.order_id)
Index("ix_orders_email", orders.c.user_email, orders.c.placed_at, orders.c.order_id)

consumed_offsets = Table(
    "consumed_offsets", metadata,
    Column("topic", String(255), primary_key=True),
    Column("partition_id", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

counters = Table(
    "counters", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed")
SEQ = "seq"  # the counters row holding the last change number given out
