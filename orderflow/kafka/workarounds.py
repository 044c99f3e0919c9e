"""What kafka-python 3.0.12's ``KafkaProducer`` does not offer in public, in the one module that reads its insides.

Every function here names the behaviour of the library it works around. Nothing else in the project
touches a client's private attributes (``_transaction_manager``, ``_sender``, ``_metadata``).

* A producer can be left unable to ever send again, while it still answers ``partitions_for``:
  an idempotent producer whose retried batch expires (after ``delivery_timeout_ms``, e.g. while the
  broker is down) gets its producer id reset in ``Sender._send_producer_data`` through
  ``TransactionManager.reset_producer_id()``, which leaves the state READY; a new id is only asked for
  from UNINITIALIZED, so ``Sender.run_once`` holds every batch back at its "no producer id" check
  forever. A fatal error state is just as final. ``stuck()`` tells; the caller replaces the producer.
* ``close(timeout)`` of a producer with unfinished batches raises ``KafkaTimeoutError`` from its
  ``flush()`` and leaves the I/O thread running: ``discard()`` closes without waiting.
* ``send_offsets_to_transaction``, ``commit_transaction`` and ``abort_transaction`` wait for their
  result without a timeout, and the request can be dropped: when the transaction coordinator's
  connection fails, ``KafkaNetClient.await_ready()`` raises instead of returning False and
  ``Sender._maybe_send_transactional_request`` then neither sends nor requeues the request (with one
  broker, the coordinator dies with it). The bounded versions below raise ``TransactionStuck``
  instead of waiting forever; the caller then replaces the producer, whose successor, with the same
  ``transactional_id``, aborts what was left open.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka.producer.transaction_manager import TransactionState

from orderflow.kafka.clients import KafkaProducer, OffsetAndMetadata, TopicPartition
from orderflow.kafka.errors import KafkaTimeoutError, describe

log = logging.getLogger(__name__)

__all__ = ["TransactionStuck", "abort_transaction", "close", "commit_transaction", "discard", "fatal_error",
           "has_producer_id", "refresh_metadata", "send_offsets_to_transaction", "stuck"]


class TransactionStuck(KafkaTimeoutError):  # type: ignore[misc]  # kafka-python ships no type hints
    """A transactional step did not finish in time: the producer must be replaced, not used again."""


def stuck(producer: KafkaProducer) -> str | None:
    """Why ``producer`` can never deliver a record again, or None (see the module's docstring)."""
    if not producer._sender.is_alive():
        return "its I/O thread has ended"
    manager = producer._transaction_manager
    if manager is None:  # neither idempotent nor transactional: nothing to be stuck on
        return None
    if manager.has_fatal_error():
        return f"fatal error state ({describe(manager.last_error)})"
    if (not manager.is_transactional() and not manager.has_producer_id()
            and manager._current_state is TransactionState.READY and not manager._pending_requests
            and not manager.has_in_flight_transactional_request()):
        return "producer id reset by an expired batch while READY: no new id will be asked for"
    return None


def fatal_error(producer: KafkaProducer) -> BaseException | None:
    """The error that put a producer's transactions in their fatal state (a fence, for one), if they are in it."""
    manager = producer._transaction_manager
    if manager is None or not manager.has_fatal_error():
        return None
    return manager.last_error  # type: ignore[no-any-return]  # kafka-python ships no type hints


def has_producer_id(producer: KafkaProducer) -> bool:
    """Whether an idempotent or transactional producer holds a producer id (it can write)."""
    manager = producer._transaction_manager
    return manager is None or bool(manager.has_producer_id())


def refresh_metadata(producer: KafkaProducer, timeout: float) -> bool:
    """Ask the cluster for fresh metadata through ``producer``'s own connections: whether it answered in time.

    ``partitions_for`` answers from the cache and so says nothing about the broker being there now.
    """
    answered = threading.Event()
    future = producer._metadata.request_update()
    future.add_both(lambda *_: answered.set())
    producer._sender.wakeup()
    answered.wait(timeout)
    return bool(future.is_done and future.succeeded())


def discard(producer: KafkaProducer, timeout: float = 5.0) -> None:
    """Close ``producer`` without waiting for what it holds: fail its pending records, stop its I/O thread."""
    try:
        producer._sender.force_close()
        producer._sender.join(timeout)
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001 - a producer being thrown away may fail in any way
        log.debug("discarding a producer: %s", describe(exc))


def close(producer: KafkaProducer, timeout: float) -> None:
    """Close, delivering what is pending for up to ``timeout`` s; discard what is left after that."""
    try:
        producer.close(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a KafkaTimeoutError from flush(), or worse
        log.warning("producer not closed within %.0fs (%s); discarding what it holds", timeout, describe(exc))
        discard(producer)


def _wait(producer: KafkaProducer, result: Any, timeout: float, step: str) -> None:
    producer._sender.wakeup()
    if not result.wait(timeout_ms=int(timeout * 1000)):
        state = producer._transaction_manager._current_state.name
        raise TransactionStuck(f"{step} not done after {timeout:g}s (transaction state {state})")


def send_offsets_to_transaction(producer: KafkaProducer, offsets: dict[TopicPartition, OffsetAndMetadata],
                                group_metadata: Any, timeout: float) -> None:
    """``KafkaProducer.send_offsets_to_transaction``, giving up after ``timeout`` s."""
    result = producer._transaction_manager.send_offsets_to_transaction(offsets, group_metadata)
    _wait(producer, result, timeout, "send_offsets_to_transaction")


def commit_transaction(producer: KafkaProducer, timeout: float) -> None:
    """``KafkaProducer.commit_transaction``, giving up after ``timeout`` s."""
    _wait(producer, producer._transaction_manager.begin_commit(), timeout, "commit_transaction")


def abort_transaction(producer: KafkaProducer, timeout: float) -> None:
    """``KafkaProducer.abort_transaction``, giving up after ``timeout`` s."""
    _wait(producer, producer._transaction_manager.begin_abort(), timeout, "abort_transaction")
