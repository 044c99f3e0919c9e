"""parse() and dead_letter(): good records become Inbound, unreadable ones go to ``<topic>.dlq``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderflow.events import OrderDetails, OrderPlaced
from orderflow.kafka import Inbound, KafkaError, Output, Record, dead_letter, fenced, parse
from orderflow.kafka.errors import ProducerFencedError

TOPIC = "t1.order_details"


def record(value: bytes | None, key: bytes | None = b"o-1", partition: int = 2, offset: int = 41) -> Record:
    return Record(TOPIC, partition, offset, key, value)


def placed_bytes() -> bytes:
    return OrderPlaced(order_id="o-1", user_id="u1", user_email="a@b.co",
                       order_details=OrderDetails(price=Decimal("5.00")), total=Decimal("5.00"),
                       time=datetime(2025, 3, 15, tzinfo=UTC)).to_bytes()


def test_valid_json_becomes_inbound_with_its_record() -> None:
    rec = record(placed_bytes())
    result = parse(OrderPlaced, rec)
    assert isinstance(result, Inbound)
    assert result.record is rec
    assert isinstance(result.value, OrderPlaced)
    assert result.value.order_id == "o-1"
    assert result.value.total == Decimal("5.00")


POISON = {
    "not-json": b"hello, world",
    "not-utf8": b"\xff\xfe\x00\x01",
    "truncated": placed_bytes()[:40],
    "wrong-schema": b'{"order_id": "o-1", "status": "confirmed"}',
    "wrong-type": b"[1, 2, 3]",
    "empty": b"",
}


@pytest.mark.parametrize("value", POISON.values(), ids=POISON.keys())
def test_unreadable_records_are_dead_lettered(value: bytes) -> None:
    result = parse(OrderPlaced, record(value), "transactions_backend")
    assert isinstance(result, Output)
    assert result.topic == "t1.order_details.dlq"
    assert result.key == b"o-1"
    assert result.value == value
    headers = dict(result.headers)
    assert headers["error"].startswith(b"ValidationError: ")
    assert headers["source_topic"] == TOPIC.encode()
    assert headers["source_partition"] == b"2"
    assert headers["source_offset"] == b"41"
    assert headers["consumer_group"] == b"transactions_backend"


def test_error_header_names_the_missing_field() -> None:
    result = parse(OrderPlaced, record(b'{"order_id": "o-1"}'))
    assert isinstance(result, Output)
    assert b"user_email" in dict(result.headers)["error"]


def test_a_tombstone_is_dead_lettered_as_empty_bytes() -> None:
    result = parse(OrderPlaced, record(None))
    assert isinstance(result, Output)
    assert result.value == b""
    assert dict(result.headers)["error"] == b"ValueError: empty record value"


def test_dead_letter_without_a_key() -> None:
    out = dead_letter(record(b"x", key=None, partition=0, offset=0), "boom")
    assert out.key is None
    assert out.topic == "t1.order_details.dlq"
    assert out.value == b"x"
    assert out.headers == (
        ("error", b"boom"),
        ("source_topic", TOPIC.encode()),
        ("source_partition", b"0"),
        ("source_offset", b"0"),
        ("consumer_group", b""),
    )


def test_dead_letter_keeps_the_original_key_bytes_even_undecodable() -> None:
    """Replay must send the record to the partition it came from: the key goes on byte for byte."""
    out = dead_letter(record(b"x", key=b"\xffo-1"), "boom")
    assert out.key == b"\xffo-1"


def test_the_error_header_is_bounded() -> None:
    out = dead_letter(record(b"x"), "e" * 10_000)
    assert len(dict(out.headers)["error"]) == 4000


@pytest.mark.parametrize(("exc", "expected"), [
    (ProducerFencedError(), True),
    (KafkaError("Cannot execute transactional method because we are in an error state: ProducerFencedError"), True),
    (KafkaError("request timed out"), False),
    (KafkaError("NotCoordinator"), False),
])
def test_a_fenced_producer_is_recognised_whatever_error_carries_it(exc: Exception, expected: bool) -> None:
    """A fenced replica must stop; re-creating its producer would fence the replica that replaced it."""
    assert fenced(exc) is expected
