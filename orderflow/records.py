"""What flows through the stage loop: parsed inputs, outputs, dead letters, the processor's shape."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from orderflow.kafka_io import Record
from orderflow.topics import dlq

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Inbound(Generic[M]):
    """A parsed input record and where it came from."""

    value: M
    record: Record


@dataclass(frozen=True)
class Output:
    topic: str
    key: str | bytes | None  # bytes: a key passed on as it came (dead letters)
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Processor(Protocol[M]):
    def process(self, batch: Sequence[Inbound[M]], ends: dict[int, int]) -> list[Output]:
        """Turn a batch of parsed records into output records. May keep state.

        ``ends`` is, per partition of the batch, the offset after its last record (readable or not):
        where the partition stands once this batch is committed.
        """
        ...

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        """(Re)build state for newly owned partitions; return offsets to resume from, if it knows them."""
        ...


def dead_letter(record: Record, error: str, group: str = "") -> Output:
    """The original bytes, with why, where from and who gave up in the headers."""
    headers = (
        ("error", error.encode()[:4000]),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("consumer_group", group.encode()),
    )
    return Output(dlq(record.topic), record.key, record.value or b"", headers)


def parse(model: type[M], record: Record, group: str = "") -> Inbound[M] | Output:
    try:
        if record.value is None:
            raise ValueError("empty record value")
        return Inbound(model.model_validate_json(record.value), record)
    except (ValidationError, ValueError) as exc:
        return dead_letter(record, f"{type(exc).__name__}: {exc}", group)


def text_key(key: str | bytes | None) -> str | None:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop finishes its batch and exits cleanly."""

    def __init__(self) -> None:
        self.stopped = False  # a plain flag: taking a lock inside a signal handler can deadlock

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self

    def set(self, *_: object) -> None:
        self.stopped = True

    def wait(self, seconds: float) -> bool:
        """Sleep, waking up within 0.1 s of a stop; True if stopped."""
        deadline = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.stopped
