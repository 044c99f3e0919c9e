"""orderflow.metrics and the orders API's gunicorn hooks for Prometheus multi-process mode.

prometheus_client picks its storage when imported, so the multi-process cases run in a fresh interpreter.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orderflow.settings import ConsumerServiceSettings
from tests.support import ROOT, free_port


@pytest.fixture
def gunicorn_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """The API's gunicorn config, imported with a metrics folder given (importing it chooses one)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "imported"))
    from orders_backend import gunicorn_conf as conf

    return conf


def run(script: str, multiproc_dir: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_exposition_adds_up_every_worker_process(tmp_path: Path) -> None:
    out = run("""
        import multiprocessing, sys
        from orderflow import metrics
        metrics.export(metrics.ORDERS_API)

        def worker(n):
            for _ in range(n):
                metrics.ORDERS_RECEIVED.labels("created").inc()
                metrics.ORDERS_PUBLISHED.inc()
                metrics.PUBLISH_SECONDS.observe(0.01)

        procs = [multiprocessing.get_context("fork").Process(target=worker, args=(n,)) for n in (2, 3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        sys.stdout.write(metrics.exposition()[0].decode())
    """, multiproc_dir=tmp_path)
    found = values(out)
    assert found[("orders_received_total", (("outcome", "created"),))] == 5
    assert found[("orders_received_total", (("outcome", "conflict"),))] == 0
    assert found[("orders_published_total", ())] == 5
    assert found[("orders_publish_seconds_count", ())] == 5
    assert len(list(tmp_path.glob("counter_*.db"))) >= 2, "one file per worker"


def test_a_consumer_serves_its_own_metrics_only() -> None:
    port = free_port()
    out = run(f"""
        import sys, urllib.request
        from orderflow import metrics
        from orderflow.settings import ConsumerServiceSettings
        assert metrics.serve(ConsumerServiceSettings(metrics_port={port}), metrics.STAGE, metrics.EMAIL)
        metrics.RECORDS_PROCESSED.labels("email_backend").inc(7)
        metrics.EMAILS_SENT.inc()
        sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    """)
    found = values(out)
    assert found[("stage_records_processed_total", (("stage", "email_backend"),))] == 7
    assert found[("emails_sent_total", ())] == 1
    assert not [name for name, _ in found if name.startswith("orders_")], "the API's metrics are not the consumer's"


def test_serve_is_off_at_port_zero_and_survives_a_busy_port(caplog: pytest.LogCaptureFixture) -> None:
    from orderflow import metrics

    assert metrics.serve(ConsumerServiceSettings(metrics_port=0)) is False
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert metrics.serve(ConsumerServiceSettings(metrics_port=busy.getsockname()[1])) is False
    assert "metrics not served" in caplog.text


def test_gunicorn_makes_a_fresh_metrics_dir_and_removes_it(monkeypatch: pytest.MonkeyPatch,
                                                           gunicorn_conf: ModuleType) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # so that monkeypatch restores the variable's absence
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setattr(gunicorn_conf, "_own_metrics_dir", None)
    first = Path(gunicorn_conf.prepare_metrics_dir())
    assert first.is_dir() and not any(first.iterdir())
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(first)
    gunicorn_conf.on_exit(None)
    assert not first.exists()


def test_gunicorn_keeps_a_given_metrics_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            gunicorn_conf: ModuleType) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "given"))
    monkeypatch.setattr(gunicorn_conf, "_own_metrics_dir", None)
    assert gunicorn_conf.prepare_metrics_dir() == str(tmp_path / "given")
    gunicorn_conf.on_exit(None)
    assert (tmp_path / "given").is_dir()


def test_a_dead_worker_leaves_no_live_gauge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            gunicorn_conf: ModuleType) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "gauge_livemax_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    gunicorn_conf.child_exit(None, SimpleNamespace(pid=4242))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"], "counters outlive their worker"


def test_a_new_worker_connects_its_producer_before_its_first_order(gunicorn_conf: ModuleType) -> None:
    import threading

    called = threading.Event()
    publisher = SimpleNamespace(connect=called.set)
    gunicorn_conf.post_worker_init(SimpleNamespace(wsgi=SimpleNamespace(publisher=publisher)))
    assert called.wait(5), "post_worker_init did not connect the worker's producer"
    gunicorn_conf.post_worker_init(SimpleNamespace(wsgi=object()))  # another WSGI app: nothing to connect
