"""``RecordPublisher``: request threads writing records one at a time through one producer, each
acknowledged by the broker before the call returns (the orders API's edge).

It keeps answering while Kafka is away and comes back by itself:

* the producer is made on first use (after a fork, never at import), and replaced, with a WARNING
  saying what was seen, when it can never deliver again (``workarounds.stuck``); no thread waits
  longer than the write timeout for a producer being made, and a failed attempt is not repeated
  within ``RECREATE_AFTER``;
* a failed write means Kafka is down until a write or a check succeeds: meanwhile one caller at a
  time tries (``attempt()``) and the others are refused at once, so threads do not pile up behind
  timeouts and the first write the broker takes again ends the outage;
* ``ready()`` says whether a write can be acknowledged now: not while down or stuck, and checked
  against the broker (a metadata round trip through this producer) when nothing was acknowledged lately.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orderflow.kafka import workarounds
from orderflow.kafka.clients import KafkaProducer, make_producer, publish
from orderflow.kafka.errors import BrokerUnavailable, KafkaError, describe
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)

RECREATE_AFTER = 1.0  # seconds between two attempts to make a producer
FRESH = 2.0  # an acknowledgement or a check this recent says that Kafka takes writes
CHECK_TIMEOUT = 2.0  # a check: the metadata round trip, and the producer id of a new producer


class KafkaDown(BrokerUnavailable):
    """Refused without trying: Kafka is down and another request is already trying."""


class RecordPublisher:
    def __init__(self, settings: KafkaSettings, topic: str, *, timeout: float, **overrides: Any) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout = timeout
        self.overrides = overrides
        self._producer: KafkaProducer | None = None
        self._swap = threading.Lock()  # guards self._producer
        self._making = threading.Lock()  # held while a producer is made
        self._made_failed_at = float("-inf")
        self._made_error = ""
        self._down: str | None = None  # why writes fail now; None when the last one went through
        self._confirmed_at = float("-inf")  # the last acknowledgement or successful check
        self._trying = threading.Lock()  # held by the one caller that tries while Kafka is down
        self._check_lock = threading.Lock()
        self._check: threading.Thread | None = None

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Around everything a request does with Kafka: refused at once (``KafkaDown``) while Kafka is
        down and another request is trying; a failure inside for want of Kafka marks it down."""
        trying = False
        if self._down is not None:
            if not self._trying.acquire(blocking=False):
                raise KafkaDown(f"Kafka is unavailable ({self._down})")
            trying = True
        try:
            yield
        except Exception as exc:
            cause = _unavailable_cause(exc)
            if cause is not None:
                self._failed(describe(cause))
            raise
        finally:
            if trying:
                self._trying.release()

    def publish(self, key: str, value: bytes) -> tuple[int, int]:
        """Write one record, return (partition, offset) once acknowledged; ``BrokerUnavailable`` otherwise."""
        producer = self._get()
        try:
            written = publish(producer, self.topic, key, value, timeout=self.timeout + 1)
        except BrokerUnavailable as exc:
            self._failed(str(exc), producer)
            raise
        self._confirmed()
        return written

    # -- readiness -----------------------------------------------------------------------------
    def ready(self, wait: float = 1.5) -> str | None:
        """None when a write can be acknowledged now, else why not. Checks with the broker (waiting up
        to ``wait`` s for the answer) unless a write or a check succeeded within the last ``FRESH`` s."""
        producer = self._producer
        if producer is not None:
            why = workarounds.stuck(producer)
            if why is not None:
                self._failed(why, producer)
        if self._down is None and time.monotonic() - self._confirmed_at < FRESH:
            return None
        check = self._start_check()
        check.join(wait)
        if check.is_alive():
            return self._down or "still checking whether Kafka is reachable"
        return self._down

    def connect(self) -> None:
        """Make the producer and check the broker now (at a worker's start), rather than on the first request."""
        self._start_check().join()

    def _start_check(self) -> threading.Thread:
        with self._check_lock:
            if self._check is None or not self._check.is_alive():
                self._check = threading.Thread(target=self._run_check, name="kafka-check", daemon=True)
                self._check.start()
            return self._check

    def _run_check(self) -> None:
        try:
            producer = self._get()
        except BrokerUnavailable:
            return  # noted by _get
        why = workarounds.stuck(producer)
        if why is not None:
            self._failed(why, producer)
            return
        deadline = time.monotonic() + CHECK_TIMEOUT
        if not workarounds.refresh_metadata(producer, CHECK_TIMEOUT):
            self._failed(f"no metadata from the broker within {CHECK_TIMEOUT:g}s")
            return
        while not workarounds.has_producer_id(producer):  # a new producer asks for its id first
            if time.monotonic() > deadline:
                self._failed(f"no producer id from the broker within {CHECK_TIMEOUT:g}s")
                return
            time.sleep(0.02)
        self._confirmed()

    # -- the producer --------------------------------------------------------------------------
    def _get(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            why = workarounds.stuck(producer)
            if why is None:
                return producer
            self._failed(why, producer)
        if not self._making.acquire(timeout=self.timeout):
            raise BrokerUnavailable("a Kafka producer is still being made")
        try:
            if self._producer is not None:
                return self._producer
            if time.monotonic() - self._made_failed_at < RECREATE_AFTER:
                raise BrokerUnavailable(f"cannot reach Kafka ({self._made_error})")
            try:
                producer = self._new()
            except KafkaError as exc:
                self._made_failed_at, self._made_error = time.monotonic(), describe(exc)
                self._failed(f"cannot reach Kafka ({self._made_error})")
                raise BrokerUnavailable(f"cannot reach Kafka ({self._made_error})") from exc
            with self._swap:
                self._producer = producer
            return producer
        finally:
            self._making.release()

    def _new(self) -> KafkaProducer:
        ms = int(self.timeout * 1000)
        return make_producer(self.settings, max_block_ms=ms, request_timeout_ms=ms, delivery_timeout_ms=ms + 1000,
                             bootstrap_timeout_ms=ms, **self.overrides)

    def _failed(self, why: str, producer: KafkaProducer | None = None) -> None:
        if self._down is None:
            log.warning("Kafka unavailable (%s): one request at a time tries until a write goes through", why)
        self._down = why
        stuck = workarounds.stuck(producer) if producer is not None else None
        if stuck is None:
            return
        with self._swap:
            if self._producer is not producer:
                return  # replaced already
            self._producer = None
        log.warning("Kafka producer replaced: %s", stuck)
        # Off the request path: discarding waits for the producer's I/O thread to end.
        threading.Thread(target=workarounds.discard, args=(producer,), name="kafka-discard", daemon=True).start()

    def _confirmed(self) -> None:
        if self._down is not None:
            log.info("Kafka acknowledges writes again")
        self._down = None
        self._confirmed_at = time.monotonic()

    def close(self, timeout: float = 5.0) -> None:
        with self._swap:
            producer, self._producer = self._producer, None
        if producer is not None:
            workarounds.close(producer, timeout)


def _unavailable_cause(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain that says Kafka could not be reached, if there is one (a write not
    acknowledged, or a question the broker did not answer, such as where a partition ends)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokerUnavailable | KafkaError) and not isinstance(seen, KafkaDown):
            return seen
        seen = seen.__cause__
    return None
