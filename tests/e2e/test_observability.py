"""Operators' view of the running pipeline: each service's /metrics, and one order followed through the JSON logs."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orderflow.settings import KafkaSettings
from orderflow.topics import ORDER_DETAILS
from tests.e2e.test_pipeline import _healthy, post
from tests.support import ServiceProcess, SmtpSink, free_port, produce, service_env, store_env, wait_until

pytestmark = pytest.mark.e2e

CONSUMERS = ("transactions_backend", "email_backend", "analytics_backend")


@dataclass
class Stack:
    api: str
    metrics: dict[str, str]  # service -> its /metrics URL
    logs: Path


@pytest.fixture
def stack(kafka_settings: KafkaSettings, smtp_sink: SmtpSink, logs_dir: Path) -> Iterator[Stack]:
    port = free_port()
    ports = {name: free_port() for name in CONSUMERS}
    env = service_env(kafka_settings, ORDERS_PORT=str(port), ORDERS_HOST="127.0.0.1", ORDERS_WORKERS="2",
                      EMAIL_SMTP_PORT=str(smtp_sink.port), EMAIL_BACKOFF_SECONDS="0.1", EMAIL_ATTEMPTS="2",
                      TRANSACTIONS_METRICS_PORT=str(ports["transactions_backend"]),
                      EMAIL_METRICS_PORT=str(ports["email_backend"]),
                      ANALYTICS_METRICS_PORT=str(ports["analytics_backend"]), LOG_FORMAT="json",
                      # an operator following one order turns on the per-order lines
                      ORDERS_LOG_LEVEL="DEBUG", TRANSACTIONS_LOG_LEVEL="DEBUG", EMAIL_LOG_LEVEL="DEBUG",
                      **store_env(logs_dir))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    services = [ServiceProcess(m, env, logs_dir).start() for m in ("order_projector", "orders_backend", *CONSUMERS)]
    try:
        wait_until(lambda: _healthy(port), 60, what="orders API /healthz")
        urls = {name: f"http://127.0.0.1:{p}/metrics" for name, p in ports.items()}
        urls["orders_backend"] = f"http://127.0.0.1:{port}/metrics"
        yield Stack(f"http://127.0.0.1:{port}", urls, logs_dir)
    finally:
        codes = {s.name: s.stop() for s in services}
        logs = {s.name: s.log()[-3000:] for s in services}
    assert all(code == 0 for code in codes.values()), (codes, logs)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def json_lines(path: Path) -> list[dict[str, object]]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def order(order_id: str, price: str = "40.00") -> dict[str, object]:
    return {"user_id": "obs", "order_id": order_id, "user_email": f"{order_id}@example.com",
            "order_details": {"price": price}}


def test_metrics_and_logs_follow_orders_through_every_service(stack: Stack, kafka_settings: KafkaSettings,
                                                              smtp_sink: SmtpSink) -> None:
    good = [f"obs-{i}" for i in range(1, 7)]
    for order_id in good:
        body = {**order(order_id), "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/35"}}
        assert post(stack.api + "/order", body)[0] == 201
    assert post(stack.api + "/order", order("obs-big", "99999.00"))[0] == 201  # rejected: over the limit
    assert post(stack.api + "/order", {**order("obs-1"), "payment": {
        "card_number": "4111 1111 1111 1111", "expiry": "12/35"}})[0] == 200
    assert post(stack.api + "/order", order("obs-1", "41.00"))[0] == 409
    assert post(stack.api + "/order", {"user_id": "obs"})[0] == 422
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS), [("garbage-1", b"not an order")])

    tx, mail, analytics = (stack.metrics[name] for name in CONSUMERS)
    wait_until(lambda: value(scrape(mail), "emails_sent_total") == len(good), 90, what="an email per good order")
    smtp_sink.refuse = True  # the next order's email fails after EMAIL_ATTEMPTS
    assert post(stack.api + "/order", order("obs-fail"))[0] == 201
    wait_until(lambda: value(scrape(mail), "emails_failed_total") == 1, 60, what="a failed email")
    smtp_sink.refuse = False
    wait_until(lambda: value(scrape(analytics), "stage_records_processed_total", stage="analytics_backend") == 8, 60,
               what="analytics folded every verdict")

    m = scrape(tx)
    assert value(m, "order_verdicts_total", status="confirmed") == 7
    assert value(m, "order_verdicts_total", status="rejected") == 1
    assert value(m, "stage_records_processed_total", stage="transactions_backend") == 9  # 8 orders + the garbage
    assert value(m, "stage_dead_letters_total", stage="transactions_backend") == 1
    assert value(m, "stage_commit_seconds_count", stage="transactions_backend") > 0
    assert value(scrape(mail), "stage_commit_seconds_count", stage="email_backend") > 0
    lag_topic = kafka_settings.topic(ORDER_DETAILS)

    def caught_up() -> dict[str, float] | None:
        lag = {dict(labels)["partition"]: v for (name, labels), v in scrape(tx).items()
               if name == "consumer_lag" and dict(labels)["topic"] == lag_topic}
        return lag if len(lag) == kafka_settings.partitions and not any(lag.values()) else None

    lags = wait_until(caught_up, 30, what="a lag of 0 on every partition once all is processed")
    assert set(lags) == {str(p) for p in range(kafka_settings.partitions)}

    # Several scrapes reach different gunicorn workers: each one reports every worker's orders.
    for _ in range(4):
        api = scrape(stack.metrics["orders_backend"])
        assert [value(api, "orders_received_total", outcome=o) for o in ("created", "duplicate", "conflict",
                                                                          "invalid", "unavailable")] == [8, 1, 1, 1, 0]
        assert value(api, "orders_published_total") == 8 and value(api, "orders_publish_seconds_count") == 8

    logs = {name: json_lines(stack.logs / f"{name}.log") for name in ("orders_backend", *CONSUMERS)}
    about = {name: [e for e in entries if e.get("order_id") == "obs-1"] for name, entries in logs.items()}
    assert any(e.get("outcome") == "created" for e in about["orders_backend"])
    assert any(e.get("outcome") == "duplicate" for e in about["orders_backend"])
    assert any(e.get("status") == "confirmed" for e in about["transactions_backend"])
    assert any(e.get("status") == "sent" for e in about["email_backend"])
    assert all({"time", "level", "logger", "message"} <= set(e) for entries in about.values() for e in entries)
    assert any(e.get("status") == "failed" and e["level"] == "WARNING"
               for e in logs["email_backend"] if e.get("order_id") == "obs-fail")
    assert any(e.get("status") == "rejected" and e.get("reason")
               for e in logs["transactions_backend"] if e.get("order_id") == "obs-big")
    assert any("dlq_topic" in e for e in logs["transactions_backend"] if e.get("order_id") == "garbage-1")

    # No service wrote a full address or a card number, not even where a library's words carried one.
    everything = "\n".join((stack.logs / f"{name}.log").read_text(errors="replace")
                           for name in ("order_projector", "orders_backend", *CONSUMERS))
    assert "o***@example.com" in everything  # the refusal named obs-fail's address: masked
    assert not re.findall(r"[\w.+-]{2,}@example\.com", everything)
    assert not re.findall(r"4111[ -]?1111[ -]?1111[ -]?1111", everything)
