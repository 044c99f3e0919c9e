"""A consumer replica's own state on disk: keyed entries per input partition, and checkpoints.

One SQLite file per replica (``<state dir>/<consumer group>-<replica id>.sqlite3``), in WAL mode.
It holds, per partition of the stage's input, sets of keys (an entry without a value: "order o-1 is
decided") or keys with a value (a note), and named checkpoints: the offset the state is exact up to.

The file is a cache of what Kafka already holds, never ahead of it: a stage writes a batch's keys
and its new checkpoint only after Kafka committed the batch, so a lost write (a crash in between, a
power cut that drops the last WAL frames under ``synchronous=NORMAL``) leaves the file *behind*, and
the stage reads the difference back from Kafka (``orderflow.kafka.catchup``). That is also why a
missing or unreadable file is not an error: it is replaced by an empty one, which has no
checkpoint, so every partition is read again from the beginning, once.

Lookups take one statement per batch, each partition's keys by the primary key (space, partition,
key), so their cost follows the batch, not the number of keys stored; nothing is held in memory.
This module imports no Kafka client: the reads that fill it live in ``orderflow.kafka``.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # PRAGMA user_version of a file this code can read; another one is rebuilt
KEYS_PER_STATEMENT = 400  # well under SQLite's limit on bound parameters
_UNREADABLE = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    space TEXT NOT NULL, part INTEGER NOT NULL, key TEXT NOT NULL, value BLOB,
    PRIMARY KEY (space, part, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT NOT NULL, part INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (name, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (topic TEXT PRIMARY KEY NOT NULL, topic_id TEXT NOT NULL) WITHOUT ROWID;
"""


def state_file(state_dir: str | Path, group: str, replica_id: str) -> Path:
    """Where a replica of a consumer group keeps its state; one file per (group, replica)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{group}-{replica_id}")
    return Path(state_dir) / f"{name}.sqlite3"


class StateUnreadable(Exception):
    """The state file is damaged; it has been moved aside, and the next start rebuilds it."""


class StateStore:
    """Keyed entries and checkpoints per partition in one SQLite file (see the module's docstring).

    Used by one stage thread at a time; another process may hold the same file (a replica and the
    zombie it replaced), which SQLite's locking serialises.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: str | Path) -> StateStore:
        """Open ``path``, creating it (and its folder) when missing; a damaged file is moved aside."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            log.info("state file %s is new: each partition is read from the beginning once", path)
        try:
            return cls(path, _connect(path))
        except sqlite3.DatabaseError as exc:
            if not _unreadable(exc):
                raise
            log.warning("state file %s is unreadable (%s): moved aside; rebuilding it from the topics", path, exc)
            _move_aside(path)
            return cls(path, _connect(path))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def bind(self, sources: Mapping[str, str]) -> bool:
        """Name the topics the state is read from, with their ids (topic name -> id). A file filled
        from another topic of one of those names (deleted and made again, another cluster) knows
        nothing true about this one: it is emptied, and True returned.

        Offsets alone cannot tell: a group whose committed offsets expired also looks behind its file.
        """
        with self.transaction() as tx:
            known = dict(self._db.execute("SELECT topic, topic_id FROM sources").fetchall())
            stale = sorted(t for t, topic_id in sources.items() if known.get(t, topic_id) != topic_id)
            if stale:
                log.warning("state file %s was filled from other topics named %s: emptied, to be rebuilt",
                            self.path, ", ".join(stale))
                self._db.execute("DELETE FROM entries")
                self._db.execute("DELETE FROM checkpoints")
                self._db.execute("DELETE FROM sources")
            tx.sources(sources)
        return bool(stale)

    # -- reading -------------------------------------------------------------------------------
    def checkpoint(self, name: str, partition: int) -> int | None:
        """The offset checkpoint ``name`` of ``partition`` is exact up to, or None if never set."""
        with self._guard():
            row = self._db.execute("SELECT next_offset FROM checkpoints WHERE name = ? AND part = ?",
                                   (name, partition)).fetchone()
        return None if row is None else int(row[0])

    def find(self, space: str, keys: Mapping[int, Collection[str]]) -> dict[int, dict[str, bytes | None]]:
        """Which of ``keys`` (per partition) ``space`` holds, with their values: one statement for them all."""
        found: dict[int, dict[str, bytes | None]] = {}
        for sql, params in _lookups(space, keys):
            with self._guard():
                for part, key, value in self._db.execute(sql, params):
                    found.setdefault(int(part), {})[str(key)] = None if value is None else bytes(value)
        return found

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[StateWriter]:
        """Changes that land together or not at all."""
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield StateWriter(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A file found damaged while running is moved aside, so that the restart rebuilds it."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not _unreadable(exc):
                raise
            log.error("state file %s is damaged (%s): moved aside; the restart rebuilds it", self.path, exc)
            self._db.close()
            _move_aside(self.path)
            raise StateUnreadable(str(self.path)) from exc


class StateWriter:
    """What one ``StateStore.transaction()`` may change."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def add(self, space: str, partition: int, keys: Iterable[str]) -> None:
        """Keys without a value (members of a set); a key already there keeps its value."""
        self._db.executemany("INSERT OR IGNORE INTO entries (space, part, key) VALUES (?, ?, ?)",
                             ((space, partition, key) for key in keys))

    def put(self, space: str, partition: int, values: Mapping[str, bytes]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO entries (space, part, key, value) VALUES (?, ?, ?, ?)",
                             ((space, partition, key, value) for key, value in values.items()))

    def remove(self, space: str, partition: int, keys: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM entries WHERE space = ? AND part = ? AND key = ?",
                             ((space, partition, key) for key in keys))

    def sources(self, sources: Mapping[str, str]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO sources (topic, topic_id) VALUES (?, ?)", sources.items())

    def advance(self, name: str, partition: int, offset: int) -> None:
        """Move checkpoint ``name`` of ``partition`` to ``offset``; never back (a checkpoint only grows)."""
        self._db.execute(
            "INSERT INTO checkpoints (name, part, next_offset) VALUES (?, ?, ?) ON CONFLICT (name, part) "
            "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)", (name, partition, offset))


class _FormatMismatch(sqlite3.DatabaseError):
    """A readable SQLite file of another layout (another version of this code, or not ours)."""


def _unreadable(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file or not an SQLite file, or one of another layout; not a busy or full disk."""
    return isinstance(exc, _FormatMismatch) or getattr(exc, "sqlite_errorname", None) in _UNREADABLE


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (StateStore.transaction). Not bound to the thread
    # that opened it: a service opens the file in main() and its stage may run on another thread.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # a power cut may lose the last commits, never order them
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version != FORMAT_VERSION and (version or tables):
            raise _FormatMismatch(f"format {version}, tables {sorted(tables)}; this code reads {FORMAT_VERSION}")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        db.execute("SELECT count(*) FROM checkpoints").fetchone()  # reads a page: a damaged file says so now
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path) -> None:
    """Keep the damaged file for a look (``<name>.unreadable``); drop its WAL, which belongs to it alone."""
    if path.exists():
        path.replace(path.with_name(path.name + ".unreadable"))
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _lookups(space: str, keys: Mapping[int, Collection[str]]) -> Iterator[tuple[str, list[object]]]:
    """``SELECT``s over the primary key, each partition's keys in an ``IN`` list, joined by ``UNION ALL``.

    (A single ``(part, key) IN (VALUES ...)`` reads the whole space instead: SQLite does not search
    the index with row values from a list.)
    """
    parts: list[str] = []
    params: list[object] = []
    count = 0
    for partition, wanted in keys.items():
        wanted = list(wanted)
        for start in range(0, len(wanted), KEYS_PER_STATEMENT):
            chunk = wanted[start:start + KEYS_PER_STATEMENT]
            if count + len(chunk) > KEYS_PER_STATEMENT and parts:
                yield " UNION ALL ".join(parts), params
                parts, params, count = [], [], 0
            parts.append("SELECT part, key, value FROM entries WHERE space = ? AND part = ? AND key IN ("
                         + ", ".join("?" * len(chunk)) + ")")
            params += [space, partition, *chunk]
            count += len(chunk)
    if parts:
        yield " UNION ALL ".join(parts), params
