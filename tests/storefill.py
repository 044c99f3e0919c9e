"""An order store written as the projector writes it (its ``StoreWriter``: rows, counters and offsets in
one transaction per call), from events made in the test: no Kafka, for tests of the store's readers."""

from __future__ import annotations

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict
from orderflow.store import LoggedEvent, StoreSettings, StoreWriter, make_engine, migrate

Event = OrderPlaced | OrderVerdict | EmailOutcome
TOPIC = "filled"  # the one "partition" whose offsets the filler stores


class StoreFiller:
    """``write(*events)``: one batch, one transaction. The schema is made (or upgraded) at once."""

    def __init__(self, store_url: str) -> None:
        self.engine = make_engine(StoreSettings(database_url=store_url), writer=True)
        migrate(self.engine)
        self.writer = StoreWriter(self.engine)
        self.offset = sum(self.writer.offsets().values())

    def write(self, *events: Event) -> int:
        """Fold ``events`` into the store; the rows they changed."""
        logged = [LoggedEvent.of(e, e.to_bytes(), 0, self.offset + i) for i, e in enumerate(events)]
        self.offset += len(events)
        return self.writer.apply(logged, {(TOPIC, 0): self.offset}).rows

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StoreFiller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
