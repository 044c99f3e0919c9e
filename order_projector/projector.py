"""The projector's loop: the three order topics, without a consumer group, folded into the order store.

poll -> parse (unreadable -> ``<topic>.dlq``, acknowledged first) -> ``StoreWriter.apply``: the rows,
counters and the partitions' next offsets in ONE database transaction. The offsets live in the store,
so the store is exactly once without a Kafka transaction: after any crash it resumes where its last
commit ends. A dead letter is written before that commit, so a crash between the two writes it again
(at least once, as every consumer's dead letters).

Any failure (broker, database, another writer) ends the turn: everything is reopened and every
partition is read again from the stored offsets, after a backoff. A store that is not a database is
moved aside and rebuilt from offset 0; so is a SQLite file deleted or replaced under the running
projector (checked every ``progress_seconds``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from order_projector.progress import Progress
from orderflow import metrics
from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.kafka import (
    AckedWriter,
    AssignedReader,
    Backoff,
    KafkaError,
    Output,
    Record,
    TopicsMissing,
    dead_letter,
    describe,
    parse_value,
)
from orderflow.settings import KafkaSettings
from orderflow.stopflag import StopFlag
from orderflow.store import (
    LoggedEvent,
    OffsetsMoved,
    StoreCorrupted,
    StoreSettings,
    StoreUnavailable,
    StoreWriter,
    leftovers,
    make_engine,
    migrate,
    move_aside,
    sqlite_file,
)
from orderflow.topics import ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT, PROJECTOR

log = logging.getLogger(__name__)

MODELS: dict[str, type[BaseModel]] = {ORDER_DETAILS: OrderPlaced, ORDER_CONFIRMED: OrderVerdict,
                                      ORDER_EMAIL_SENT: EmailOutcome}


class StoreFileGone(Exception):
    """The SQLite file was deleted or replaced while the projector wrote to it."""


class StoreFile:
    """The identity (device, inode) of the SQLite file, to notice it deleted or replaced under us."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.path is None or not self.path.exists():
            return None
        stat = self.path.stat()
        return stat.st_dev, stat.st_ino

    def check(self) -> None:
        if self.path is not None and self._identity() != self.identity:
            raise StoreFileGone(f"{self.path} was deleted or replaced")


class Projector:
    def __init__(self, kafka: KafkaSettings, store: StoreSettings, *, health_file: str | None = None,
                 progress_seconds: float = 5.0, stop: StopFlag | None = None) -> None:
        self.kafka = kafka
        self.store = store
        self.health_file = Path(health_file) if health_file else None
        self.progress_seconds = progress_seconds
        self.stop = stop or StopFlag()
        self.models = {kafka.topic(name): model for name, model in MODELS.items()}
        self.records_read = 0  # in this run of the process

    def run(self) -> None:
        if self.health_file is not None:
            self.health_file.parent.mkdir(parents=True, exist_ok=True)
        log.info("projecting %s into the order store at %s", ", ".join(self.models), self._shown_url())
        backoff = Backoff(0.5, 15.0)
        while not self.stop.stopped:
            try:
                self._project()
            except (StoreCorrupted, StoreFileGone) as exc:
                self._set_aside(exc)
            except (KafkaError, TopicsMissing, StoreUnavailable, OffsetsMoved, OSError) as exc:
                pause = backoff.next()
                log.warning("order_projector: %s; reading again from the stored offsets in %.1fs", describe(exc), pause)
                self.stop.wait(pause)
        log.info("order_projector: stopped; %d records read", self.records_read)

    def _shown_url(self) -> str:
        from_url = self.store.database_url
        return from_url.split("@", 1)[-1] if "@" in from_url else from_url  # no password in the log

    def _set_aside(self, exc: Exception) -> None:
        path = sqlite_file(self.store.database_url)
        if path is None or not path.exists():
            log.warning("order_projector: %s; rebuilding the order store from the topics", exc)
            return
        if isinstance(exc, StoreFileGone):  # another file in its place: the store it holds is used as it is
            log.warning("order_projector: %s; reading from the offsets stored in the new file", exc)
            return
        moved = move_aside(path)
        log.error("order_projector: %s is not a readable database (%s); moved aside to %s, rebuilding the order "
                  "store from the topics", path, exc, moved)

    def _clear_leftovers(self) -> None:
        path = sqlite_file(self.store.database_url)
        if path is not None and leftovers(path):
            moved = move_aside(path)
            log.warning("order_projector: %s is gone but its WAL files are not; moved them aside to %s*", path, moved)

    def _project(self) -> None:
        """One session: open the store and the topics, then turn until stopped or something fails."""
        self._clear_leftovers()
        engine = make_engine(self.store, writer=True)
        reader = AssignedReader(self.kafka, list(self.models), name=PROJECTOR)
        dead_letters = AckedWriter(self.kafka)
        try:
            migrate(engine)
            writer = StoreWriter(engine)
            stored = writer.offsets()
            watched = StoreFile(sqlite_file(self.store.database_url))
            reader.open(stored)
            if stored:
                log.info("order_projector: resuming from the stored offsets of %d partitions", len(stored))
            start, read_before = reader.positions(), self.records_read
            progress = Progress(rebuilding=not stored, start=start, ends=reader.ends(), interval=self.progress_seconds)
            progress.tick(start, 0)  # the first line before the first read
            checked = time.monotonic()
            while not self.stop.stopped:
                self._turn(reader, writer, dead_letters)
                progress.tick(writer.known_offsets, self.records_read - read_before)
                if time.monotonic() - checked >= self.progress_seconds:
                    watched.check()
                    checked = time.monotonic()
        finally:
            reader.close()
            dead_letters.close()
            engine.dispose()

    def _turn(self, reader: AssignedReader, writer: StoreWriter, dead_letters: AckedWriter) -> None:
        records = reader.poll(self.kafka.poll_timeout_ms, self.kafka.max_batch)
        if self.health_file is not None:
            self.health_file.touch()
        positions = reader.positions()
        if not records and positions == writer.known_offsets:
            return
        logged, dead = self._parse(records)
        for out in dead:
            dead_letters.send_output(out)
        dead_letters.settle()
        with metrics.COMMIT_SECONDS.labels(PROJECTOR).time():
            applied = writer.apply(logged, positions)
        self.records_read += len(records)
        metrics.RECORDS_PROCESSED.labels(PROJECTOR).inc(len(records))
        metrics.DEAD_LETTERS.labels(PROJECTOR).inc(len(dead))
        if records:
            log.debug("order_projector: %d records, %d rows written", len(records), applied.rows)

    def _parse(self, records: list[Record]) -> tuple[list[LoggedEvent], list[Output]]:
        logged: list[LoggedEvent] = []
        dead: list[Output] = []
        for r in records:
            try:
                event: Any = parse_value(self.models[r.topic], r.value)
                assert r.value is not None  # parse_value refuses an empty value
                logged.append(LoggedEvent.of(event, r.value, r.partition, r.offset))
            except ValueError as exc:  # pydantic's ValidationError, a bad total, bytes that are not UTF-8
                out = dead_letter(r, f"{type(exc).__name__}: {exc}", PROJECTOR)
                dead.append(out)
                log.warning("order_projector: dead-lettered %s[%d]@%d: %s", r.topic, r.partition, r.offset,
                            str(exc)[:200], extra={"order_id": r.key.decode(errors="replace") if r.key else None,
                                                   "dlq_topic": out.topic})
        return logged, dead
