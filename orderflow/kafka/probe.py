"""End offsets asked on behalf of many threads: what a read-your-writes wait waits for.

A request that must see every order acknowledged before it started (``GET /order/<id>`` of a
just-placed order, the idempotency check of ``POST /order``) asks the end offset of the order's
partition, then waits until the order store has read that far. Requests arriving together share one
ListOffsets round trip (``SharedProbe``), and nothing here consumes a topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from orderflow.kafka.clients import KafkaConsumer, make_consumer, partition_for
from orderflow.kafka.errors import KafkaError
from orderflow.kafka.reading import end_offsets
from orderflow.settings import KafkaSettings

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
        return cast(T, result)  # the probe's own value: None only when it raised, which was raised above


class EndOffsets:
    """The end offsets of one topic's partitions, and which partition a key lands on."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._lock = threading.Lock()
        self._consumer: KafkaConsumer | None = None
        self._partitions = 0
        self._ends = SharedProbe(self._ask)

    def _client(self, timeout: float) -> KafkaConsumer:
        """Made on first use (after a fork, never at import); asked for the topic's partitions once."""
        with self._lock:
            if self._consumer is None:
                self._consumer = make_consumer(self.settings, group_id=None,
                                               bootstrap_timeout_ms=int(timeout * 1000))
            if not self._partitions:
                self._partitions = len(self._consumer.partitions_for_topic(self.topic) or ())
                if not self._partitions:
                    raise KafkaError(f"topic {self.topic} has no partitions (yet)")
            return self._consumer

    def partition_of(self, key: bytes, timeout: float) -> int:
        self._client(timeout)
        return partition_for(key, self._partitions)

    def end(self, partition: int, timeout: float) -> int:
        """The end offset of ``partition`` as of a request started after this call began."""
        return self._ends(timeout)[partition]

    def _ask(self, timeout: float) -> dict[int, int]:
        consumer = self._client(timeout)
        with self._lock:
            return end_offsets(consumer, self.topic, self._partitions, timeout)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
                self._consumer = None
