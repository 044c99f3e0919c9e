"""``make run``: the broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one) and every service.

Starts Kafka with data kept in ``.kafka/run`` (a restart keeps the orders), provisions the
topics, runs the Procfile under honcho, prints the URLs once everything answers, and stops
it all on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from werkzeug.security import generate_password_hash

from devtools.localkafka import HOME, ROOT, LocalKafka
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings, configure_logging

log = logging.getLogger("devstack")
CONSUMERS = ("transactions", "email", "analytics", "projector")
METRICS_PORTS = {"transactions": 9101, "email": 9102, "analytics": 9103, "projector": 9104}  # the services' defaults


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200 (a health check; the API's says 503 while it cannot have orders acknowledged)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_ready(env: dict[str, str], health_dir: Path, since: float, timeout: float = 120.0) -> bool:
    urls = [f"http://127.0.0.1:{env['ORDERS_PORT']}/healthz", f"http://127.0.0.1:{env['DASHBOARD_PORT']}/healthz"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = [health_dir / name for name in CONSUMERS]
        if all(answers(u) for u in urls) and all(f.exists() and f.stat().st_mtime >= since for f in files):
            return True
        time.sleep(0.5)
    return False


def metrics_urls(env: dict[str, str]) -> str:
    ports = [env["ORDERS_PORT"], env["DASHBOARD_PORT"]]
    ports += [env.get(f"{name.upper()}_METRICS_PORT", str(port)) for name, port in METRICS_PORTS.items()]
    return " ".join(f"http://127.0.0.1:{port}/metrics" for port in ports if port != "0")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # One console for people, here and in every service; LOG_FORMAT=json gives what deployed services log.
    os.environ.setdefault("LOG_FORMAT", "text")
    configure_logging("INFO")
    started = time.time()
    env = dict(os.environ)
    # The Procfile says `python`: make it this environment's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("ORDERS_PORT", "5002")
    env.setdefault("DASHBOARD_PORT", "8050")
    env.setdefault("EMAIL_SMTP_PORT", "1025")
    # The dashboard's shop page calls the API from the browser: allow its origin and tell it where the API is.
    shop = [f"http://{host}:{env['DASHBOARD_PORT']}" for host in ("127.0.0.1", "localhost")]
    env.setdefault("ORDERS_CORS_ORIGINS", ",".join(shop))
    env.setdefault("DASHBOARD_ORDERS_API_URL", f"http://127.0.0.1:{env['ORDERS_PORT']}")
    # The operator's login, made for this run unless given; a plain local run serves it over http.
    password = None
    if "DASHBOARD_OPERATOR_PASSWORD_HASH" not in env:
        password = secrets.token_urlsafe(12)
        env["DASHBOARD_OPERATOR_PASSWORD_HASH"] = generate_password_hash(password)
    env.setdefault("DASHBOARD_SECRET_KEY", secrets.token_hex(32))
    env.setdefault("DASHBOARD_COOKIE_SECURE", "false")
    login = f"operator / {password}" if password else "the operator's password you set"
    health_dir = ROOT / ".run" / "health"
    for name in CONSUMERS:
        env.setdefault(f"{name.upper()}_HEALTH_FILE", str(health_dir / name))
    broker = None
    if "KAFKA_BOOTSTRAP_SERVERS" not in env:
        broker = LocalKafka(HOME / "run", 9092, 9093).start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        log.info("Kafka ready on %s (data in %s)", broker.bootstrap_servers, broker.data_dir)
    ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                                topic_prefix=env.get("KAFKA_TOPIC_PREFIX", "")))
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile")],
                              cwd=ROOT, env=env)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if wait_ready(env, health_dir, started):
            took = time.time() - started
            sys.stderr.write(
                f"\n  Ready in {took:.1f}s\n"
                f"  Orders API   http://127.0.0.1:{env['ORDERS_PORT']}/order  (POST JSON)\n"
                f"  API docs     http://127.0.0.1:{env['ORDERS_PORT']}/docs\n"
                f"  Dashboard    http://127.0.0.1:{env['DASHBOARD_PORT']}/"
                "  (orders: /history, shop: /shop, topics: /topics)\n"
                f"  Log in as    {login}\n"
                f"  Metrics      {metrics_urls(env)}\n"
                f"  Kafka        {env['KAFKA_BOOTSTRAP_SERVERS']}\n"
                f"  SMTP catcher 127.0.0.1:{env['EMAIL_SMTP_PORT']} (mail in .run/mail)\n"
                "  Ctrl-C stops everything.\n\n")
        else:
            log.error("services did not become ready; see the log above")
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGINT)
            try:
                honcho.wait(30)
            except subprocess.TimeoutExpired:
                honcho.kill()
        if broker is not None:
            broker.stop()
            log.info("Kafka stopped")


if __name__ == "__main__":
    sys.exit(main())
