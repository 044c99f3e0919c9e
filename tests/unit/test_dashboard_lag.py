"""dashboard.lag with a stand-in measurement: every watched group each round, failures shown, stopped with the feed."""

from __future__ import annotations

import threading
import time

from dashboard.feed import Feed
from dashboard.lag import WATCHED, LagWatcher
from dashboard.view import DashboardState
from orderflow.kafka import KafkaError
from tests.support import wait_until
from tests.unit.test_dashboard_feed import KAFKA, FakeConsumer, topic_log


def test_one_round_records_every_group_and_shows_a_failure() -> None:
    calls: list[tuple[str, str]] = []

    def lag_of(service: str, topic: str) -> dict[int, int]:
        calls.append((service, topic))
        if service == "analytics_backend":
            raise KafkaError("coordinator not available")
        return {0: 4, 1: 0}

    state = DashboardState()
    watcher = LagWatcher(KAFKA, every=60, lag_of=lag_of)
    watcher.measure(state, threading.Lock())
    assert calls == list(WATCHED) == [("transactions_backend", "order_details"), ("email_backend", "order_confirmed"),
                                      ("analytics_backend", "order_confirmed")]
    lag = state.to_json()["lag"]
    assert (lag["email_backend"]["total"], lag["email_backend"]["partitions"]) == (4, {"0": 4, "1": 0})
    assert lag["email_backend"]["error"] is None and lag["analytics_backend"]["total"] is None
    assert lag["analytics_backend"]["error"] == "KafkaError: coordinator not available"
    assert watcher.rounds == 1


def test_the_watcher_runs_and_stops_with_the_feed() -> None:
    rounds = []
    watcher = LagWatcher(KAFKA, every=0.01, lag_of=lambda service, topic: rounds.append(service) or {0: 0})
    feed = Feed(KAFKA, DashboardState(), consumer_factory=lambda: FakeConsumer(topic_log([])),
                poll_timeout_ms=10, lag=watcher)
    feed.start()
    try:
        wait_until(lambda: watcher.rounds >= 3, 5, 0.01, "three rounds")
        assert set(feed.snapshot()["lag"]) == {"transactions_backend", "email_backend", "analytics_backend"}
    finally:
        feed.stop()
    done = watcher.rounds
    time.sleep(0.05)
    assert watcher.rounds == done and not feed.running
