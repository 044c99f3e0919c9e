"""RecordPublisher's gate while Kafka is down: one request at a time tries, the others are refused at once."""

from __future__ import annotations

import threading

import pytest

from orderflow.kafka import BrokerUnavailable, KafkaDown, KafkaError, RecordPublisher
from orderflow.settings import KafkaSettings


@pytest.fixture
def publisher() -> RecordPublisher:
    # Never connects in these tests: nothing here makes a producer.
    return RecordPublisher(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "orders", timeout=1.0)


def fail_inside(publisher: RecordPublisher, error: Exception) -> None:
    with pytest.raises(type(error)), publisher.attempt():
        raise error


def test_every_request_goes_through_while_kafka_is_not_known_to_be_down(publisher: RecordPublisher) -> None:
    with publisher.attempt(), publisher.attempt():  # two at once
        pass


def hold_an_attempt(publisher: RecordPublisher) -> tuple[threading.Event, threading.Event, threading.Thread]:
    inside, leave = threading.Event(), threading.Event()

    def trying() -> None:
        with publisher.attempt():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=trying)
    thread.start()
    assert inside.wait(5)
    return inside, leave, thread


@pytest.mark.parametrize("error", [BrokerUnavailable("no acknowledgement within 6s"),
                                   KafkaError("order_details: end offsets unknown")])
def test_after_a_failure_for_want_of_kafka_one_request_tries_and_the_others_are_refused(
        publisher: RecordPublisher, error: Exception) -> None:
    fail_inside(publisher, error)
    _, leave, thread = hold_an_attempt(publisher)
    with pytest.raises(KafkaDown, match=str(error).split(":")[0]), publisher.attempt():
        pytest.fail("a second request went in while one was trying")
    leave.set()
    thread.join()
    with publisher.attempt():  # the one trying is gone: the next one may try
        pass


def test_a_failure_that_is_not_kafkas_does_not_close_the_gate(publisher: RecordPublisher) -> None:
    fail_inside(publisher, ValueError("a bug"))
    _, leave, thread = hold_an_attempt(publisher)
    with publisher.attempt():
        pass
    leave.set()
    thread.join()


def test_a_failure_found_in_the_cause_counts(publisher: RecordPublisher) -> None:
    try:
        with publisher.attempt():
            try:
                raise KafkaError("where order_details ends: no answer")
            except KafkaError as exc:
                raise RuntimeError("cannot check for an earlier order") from exc
    except RuntimeError:
        pass
    _, leave, thread = hold_an_attempt(publisher)
    with pytest.raises(KafkaDown), publisher.attempt():
        pass
    leave.set()
    thread.join()
