"""Engines from settings, and what the store's owner does with a file that is not a database.

SQLite: WAL (readers never wait for the writer), ``synchronous=NORMAL`` (a commit survives a crash of
the process; a power cut may lose the last ones, which the projector reads again from Kafka), a busy
timeout, and real transactions: pysqlite's own transaction handling is switched off and every
transaction starts with an explicit ``BEGIN`` (``BEGIN IMMEDIATE`` for the writer, which so holds the
write lock from its first read). Connections are pooled (opening one, with its pragmas, cost more than
the lookup it served), and a pooled connection is handed out only while the file it opened is still
the one at the path: a file moved aside and rebuilt is the one every reader sees next. PostgreSQL: a
pool whose connections are checked before use.

A reader that must never write (the dashboard) asks for ``read_only``: SQLite opens the file with
``mode=ro`` (a missing file is an error, never an empty database made in its place, and no pragma
that writes is sent), PostgreSQL starts every transaction read-only.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from orderflow.store.settings import StoreSettings

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm", "-journal")
BEGIN_OPTION = "store_begin"
# Execution options of a connection whose SQLite transactions must hold the write lock from the start.
IMMEDIATE = {BEGIN_OPTION: "BEGIN IMMEDIATE"}
# Connections kept open per engine; more at once are opened and closed as needed.
SQLITE_POOL_SIZE = 16
FILE_ID = "store_file_id"


class StoreUnavailable(Exception):
    """The database could not be reached or did not answer: wait and try again."""


class StoreCorrupted(Exception):
    """The SQLite file is not a database, or a damaged one: its owner moves it aside and rebuilds."""


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (``None`` for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def file_id(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` now (device and inode), or ``None`` when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _read_only_sqlite_url(path: Path) -> URL:
    """``path`` as an SQLite URI filename opened with ``mode=ro`` (pysqlite's ``uri=true``)."""
    return make_url("sqlite://").set(database=f"file:{quote(str(path.absolute()))}",
                                     query={"mode": "ro", "uri": "true"})


def make_engine(settings: StoreSettings, *, writer: bool = False, read_only: bool = False) -> Engine:
    """An engine for ``settings.database_url``; ``writer``: SQLite transactions take the write lock at once
    (a connection's execution options ``IMMEDIATE`` do the same for one connection); ``read_only``: the
    engine cannot write (see above)."""
    if writer and read_only:
        raise ValueError("an engine is either the writer's or read-only")
    path = sqlite_file(settings.database_url)
    if path is None:
        if make_url(settings.database_url).get_backend_name() == "sqlite":
            raise ValueError("the order store needs a file (sqlite:///<path>), not an in-memory database")
        if read_only:
            return create_engine(settings.database_url, pool_pre_ping=True,
                                 connect_args={"options": "-c default_transaction_read_only=on"})
        return create_engine(settings.database_url, pool_pre_ping=True)
    pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": -1}
    if read_only:
        engine = create_engine(_read_only_sqlite_url(path), **pool)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url, **pool)

    @event.listens_for(engine, "do_connect")
    def _opening(_dialect: Any, record: Any, _args: Any, _params: Any) -> None:
        record.info[FILE_ID] = file_id(path)  # before the open: a file replaced meanwhile shows as changed

    @event.listens_for(engine, "checkout")
    def _same_file(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        opened = record.info.get(FILE_ID)
        if opened is None or opened != file_id(path):
            raise DisconnectionError(f"{path} is not the file this connection opened")  # the pool opens anew

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN/COMMIT by pysqlite: ours below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}")
            if not read_only:  # the writer made the file WAL; a reader cannot change that
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(BEGIN_OPTION, "BEGIN"))

    return engine.execution_options(**IMMEDIATE) if writer else engine


def corrupted(exc: BaseException) -> bool:
    """Whether ``exc`` says the SQLite file is not a database or is damaged (not merely busy or missing)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(cause, sqlite3.DatabaseError) and \
        getattr(cause, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def translated(exc: DBAPIError) -> Exception:
    """The store's own error for a database error: corrupted, or unavailable for now."""
    if corrupted(exc):
        return StoreCorrupted(str(exc.orig))
    return StoreUnavailable(f"{type(exc.orig).__name__}: {exc.orig}")


def leftovers(path: Path) -> list[Path]:
    """WAL and shared-memory files of a database file that is gone (deleted after a crash). SQLite would
    read a stale WAL into a new file of the same name: they must go before one is made."""
    if path.exists():
        return []
    return [side for side in (path.with_name(path.name + suffix) for suffix in SIDE_FILES) if side.exists()]


def move_aside(path: Path) -> Path:
    """Rename the file (and its WAL and shared-memory files) to ``<name>.corrupt-<UTC time>``; return the new
    path. Kept, never deleted: what it held may still matter to someone."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", *SIDE_FILES):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target
