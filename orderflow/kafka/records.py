"""Records as the project sees them, independent of the client library: one read, one to write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    """A record as read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    @classmethod
    def of(cls, r: Any) -> Record:
        return cls(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)


@dataclass(frozen=True)
class Output:
    """A record to write."""

    topic: str
    key: str | bytes | None  # bytes: a key passed on as it came (dead letters)
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def key_bytes(self) -> bytes | None:
        return self.key.encode() if isinstance(self.key, str) else self.key


def text_key(key: str | bytes | None) -> str | None:
    return key.decode(errors="replace") if isinstance(key, bytes) else key
