"""The order store: orders, consumed offsets, counters.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderflow.store.schema import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

COUNTERS = ("received", "confirmed", "rejected", "emails_sent", "emails_failed", "seq")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("user_id", sa.String(64)),
        sa.Column("user_email", sa.String(320)),
        sa.Column("total_cents", sa.BigInteger()),
        sa.Column("currency", sa.String(3)),
        sa.Column("placed_at", UtcDateTime()),
        sa.Column("decided_at", UtcDateTime()),
        sa.Column("emailed_at", UtcDateTime()),
        sa.Column("email_status", sa.String(16)),
        sa.Column("email_attempts", sa.Integer()),
        sa.Column("email_error", sa.Text()),
        sa.Column("placed_event_id", sa.String(36)),
        sa.Column("placed_partition", sa.Integer()),
        sa.Column("placed_offset", sa.BigInteger()),
        sa.Column("placed_json", sa.Text()),
        sa.Column("verdict_json", sa.Text()),
        sa.Column("email_json", sa.Text()),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
    )
    op.create_index("ix_orders_seq", "orders", ["seq"], unique=True)
    op.create_index("ix_orders_placed", "orders", ["placed_at", "order_id"])
    op.create_index("ix_orders_user", "orders", ["user_id", "placed_at", "order_id"])
    op.create_index("ix_orders_email", "orders", ["user_email", "placed_at", "order_id"])
    op.create_table(
        "consumed_offsets",
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition_id", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition_id", name="pk_consumed_offsets"),
    )
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.bulk_insert(counters, [{"name": name, "value": 0} for name in COUNTERS])


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_table("consumed_offsets")
    op.drop_index("ix_orders_email", "orders")
    op.drop_index("ix_orders_user", "orders")
    op.drop_index("ix_orders_placed", "orders")
    op.drop_index("ix_orders_seq", "orders")
    op.drop_table("orders")
