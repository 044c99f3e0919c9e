"""A topic read into memory by key, kept current by a background consumer, with read-your-writes.

``get(key)`` first waits until the table has read everything the key's partition held at the
moment of the call, so a value written by any process before the call is seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from orderflow.kafka.backoff import Backoff
from orderflow.kafka.clients import TopicPartition, make_consumer, partition_for
from orderflow.kafka.errors import KafkaError
from orderflow.kafka.reading import end_offsets
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)


class TableNotReady(Exception):
    """The table could not catch up with the topic in time (broker unreachable or far behind)."""


T = TypeVar("T")


class SharedProbe(Generic[T]):
    """``probe()`` on behalf of many threads: each caller gets the result of a call that *started after
    it arrived* (what read-your-writes needs), and callers that arrive together share that call.

    While one call is in flight, new callers wait for the next one, which then serves all of them:
    at most two calls' time per caller, and one broker round trip per burst instead of one per caller.
    """

    def __init__(self, probe: Callable[[float], T]) -> None:
        self._probe = probe
        self._cond = threading.Condition(threading.Lock())
        self._started = 0  # calls started so far
        self._finished = 0  # the number of the last call that finished
        self._running = False
        self._outcome: tuple[T | None, BaseException | None] = (None, None)

    def __call__(self, timeout: float) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            wanted = self._started + 1  # the first call that starts from now on
            while self._finished < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no probe finished within {timeout}s")
                if not self._running:
                    self._running = True
                    self._started += 1
                    number = self._started
                    outcome: tuple[T | None, BaseException | None] = (None, TimeoutError("the probe was interrupted"))
                    self._cond.release()
                    try:
                        outcome = (self._probe(remaining), None)  # what is left of this caller's time
                    except Exception as exc:  # noqa: BLE001 - handed to every caller of this call
                        outcome = (None, exc)
                    finally:  # even when interrupted, so that later callers are not left waiting
                        self._cond.acquire()
                        self._running, self._finished, self._outcome = False, number, outcome
                        self._cond.notify_all()
                elif not self._cond.wait(remaining):
                    raise TimeoutError(f"no probe finished within {timeout}s")
            result, error = self._outcome
        if error is not None:
            raise error
        return result  # type: ignore[return-value]


class TopicTable:
    """key -> the first value written under it (later writes of a key are repeats, not updates)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._values: dict[bytes, bytes] = {}
        self._positions: dict[int, int] = {}
        self._partitions = 0
        self._cond = threading.Condition()
        self._probe_lock = threading.Lock()
        self._probe: Any = None
        self._ends = SharedProbe(self._end_offsets)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> TopicTable:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._follow, name=f"table-{self.topic}", daemon=True)
                self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close(autocommit=False)
                self._probe = None

    def peek(self, key: bytes) -> bytes | None:
        """The value read so far for ``key``, without waiting."""
        with self._cond:
            return self._values.get(key)

    def wait_for(self, partition: int, offset: int, timeout: float) -> None:
        """Block until the table has read ``partition`` past ``offset`` (e.g. a write just acknowledged)."""
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._positions.get(partition, 0) <= offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    raise TableNotReady(f"{self.topic}/{partition} not past offset {offset} after {timeout}s")

    def get(self, key: bytes, timeout: float) -> bytes | None:
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            if key in self._values:
                return self._values[key]
            while not self._partitions:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TableNotReady(f"{self.topic}: no partitions known yet")
            partition = partition_for(key, self._partitions)
        try:
            end = self._ends(timeout)[partition]
        except (KafkaError, TimeoutError) as exc:
            raise TableNotReady(f"{self.topic}: end offsets unknown: {exc}") from exc
        with self._cond:
            while self._positions.get(partition, 0) < end:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    raise TableNotReady(f"{self.topic}/{partition} behind after {timeout}s")
            return self._values.get(key)

    def _end_offsets(self, timeout: float) -> dict[int, int]:
        """Every partition's end offset, in one request (run by ``SharedProbe``, one call at a time)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = make_consumer(self.settings, group_id=None, bootstrap_timeout_ms=int(timeout * 1000))
            return end_offsets(self._probe, self.topic, self._partitions, timeout)

    def _follow(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while not self._stop.is_set():
            try:
                self._follow_once()
                return
            except KafkaError as exc:
                pause = backoff.next()
                log.warning("following %s failed (%s); retrying in %.1fs", self.topic, exc, pause)
                self._stop.wait(pause)

    def _follow_once(self) -> None:
        # A short fetch wait: a writer waits for its own record to come back through the table.
        consumer = make_consumer(self.settings, group_id=None, bootstrap_timeout_ms=5000, fetch_max_wait_ms=20)
        try:
            partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
            if not partitions:
                raise KafkaError(f"topic {self.topic} has no partitions yet")
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self._positions.get(tp.partition, 0))
            with self._cond:
                self._partitions = len(partitions)
                self._cond.notify_all()
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=200)
                with self._cond:
                    for records in polled.values():
                        for r in records:
                            if r.key is not None and r.value is not None:
                                self._values.setdefault(r.key, r.value)
                    for tp in tps:
                        self._positions[tp.partition] = consumer.position(tp)
                    self._cond.notify_all()
        finally:
            consumer.close(autocommit=False)
