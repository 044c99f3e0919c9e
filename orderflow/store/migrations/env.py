"""Alembic's entry point: run the migrations on the connection ``orderflow.store.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from orderflow.store.schema import metadata

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode writes for it.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
