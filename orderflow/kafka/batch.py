"""What flows through the stage loop: parsed inputs, the processor's shape, and parsing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from orderflow.kafka.deadletters import dead_letter
from orderflow.kafka.records import Output, Record

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Inbound(Generic[M]):
    """A parsed input record and where it came from."""

    value: M
    record: Record


class Processor(Protocol[M]):
    def process(self, batch: Sequence[Inbound[M]], ends: dict[int, int]) -> list[Output]:
        """Turn a batch of parsed records into output records. May keep state.

        ``ends`` is, per partition of the batch, the offset after its last record (readable or not):
        where the partition stands once this batch is committed.
        """
        ...

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        """(Re)build state for newly owned partitions, or after a rewind (what ``process`` did since
        the last commit is void); return offsets to resume from, if it knows them."""
        ...

    def committed(self, ends: dict[int, int]) -> None:
        """Kafka has committed the input up to ``ends`` (per partition) and, with it, the outputs of
        every batch before: state kept beside Kafka may now record that batch, never earlier.

        An exception here ends the stage; Kafka already has the batch, so its restart catches up.
        """
        ...


def parse_value(model: type[M], value: bytes | None) -> M:
    """``value`` as ``model``; ``ValueError`` (``ValidationError`` is one) when it cannot be read."""
    if value is None:
        raise ValueError("empty record value")
    return model.model_validate_json(value)


def parse(model: type[M], record: Record, group: str = "") -> Inbound[M] | Output:
    """The record as ``model``, or its dead letter."""
    try:
        return Inbound(parse_value(model, record.value), record)
    except (ValidationError, ValueError) as exc:
        return dead_letter(record, f"{type(exc).__name__}: {exc}", group)
