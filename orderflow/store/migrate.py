"""``migrate(engine)``: bring the store's schema to the newest revision (Alembic, run in-process).

Safe from several processes at once: the upgrade runs in one transaction that first takes the
database's write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock), so a second process
finds the schema already at head and does nothing.
"""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from orderflow.store.engine import IMMEDIATE, translated

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "orderflow.store:migrations"
MIGRATION_LOCK = 0x6F726465  # any number of our own for pg_advisory_xact_lock


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The database's revision (``None``: no schema yet)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise translated(exc) from exc


def migrate(engine: Engine) -> None:
    """Upgrade to head; ``StoreCorrupted`` or ``StoreUnavailable`` when the database cannot be used."""
    config = alembic_config()
    try:
        with engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            before = MigrationContext.configure(conn).get_current_revision()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            after = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise translated(exc) from exc
    if before != after:
        log.info("order store schema upgraded from %s to %s", before or "nothing", after)
