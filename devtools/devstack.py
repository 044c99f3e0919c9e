"""``make run``: the broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one) and every service.

Starts Kafka with data kept in ``.kafka/run`` (a restart keeps the orders), or a cluster of
``DEVSTACK_BROKERS`` nodes in ``.kafka/cluster``, provisions the topics, runs the Procfile under
honcho, prints the URLs once everything answers, and stops it all on Ctrl-C or SIGTERM. Killed
outright, it takes the broker and the services with it: the kernel signals them when it dies.

``DEVSTACK_*`` (for tests and a second stack beside the first): ``BROKERS`` (1), ``KAFKA_PORTS`` and
``KAFKA_CONTROLLER_PORTS`` (comma-separated, one per node: 9092, 9094, ... and 9093, 9095, ...),
``KAFKA_DATA`` (the folder above), ``RUN_DIR`` (health files and mail: ``.run``).
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

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from werkzeug.security import generate_password_hash

from devtools.brokerguard import die_with_parent, end_with_parent
from devtools.localcluster import LocalCluster, ports_list
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


class StackSettings(BaseSettings):
    """``DEVSTACK_*``: where ``make run`` keeps its own broker and run files."""

    model_config = SettingsConfigDict(env_prefix="DEVSTACK_")

    brokers: int = Field(1, ge=1, le=5, description="nodes of the local cluster")
    kafka_ports: str = ""
    kafka_controller_ports: str = ""
    kafka_data: Path | None = None
    run_dir: Path = ROOT / ".run"

    def ports(self) -> tuple[list[int], list[int]]:
        ports = ports_list(self.kafka_ports) or [9092 + 2 * i for i in range(self.brokers)]
        controllers = ports_list(self.kafka_controller_ports) or [p + 1 for p in ports]
        if not len(ports) == len(controllers) == self.brokers:
            raise ValueError(f"DEVSTACK_BROKERS={self.brokers} needs that many DEVSTACK_KAFKA_PORTS and "
                             "DEVSTACK_KAFKA_CONTROLLER_PORTS")
        return ports, controllers

    def broker(self) -> LocalKafka | LocalCluster:
        ports, controllers = self.ports()
        if self.brokers == 1:
            return LocalKafka(self.kafka_data or HOME / "run", ports[0], controllers[0])
        return LocalCluster(self.kafka_data or HOME / "cluster", ports, controllers)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Stop cleanly from the first instant: a SIGTERM while the broker starts must stop it too.
    signal.signal(signal.SIGTERM, _interrupt)
    end_with_parent(signal.SIGTERM)  # `make run` killed, even with -9: this stops as on a SIGTERM
    # One console for people, here and in every service; LOG_FORMAT=json gives what deployed services log.
    os.environ.setdefault("LOG_FORMAT", "text")
    configure_logging("INFO")
    stack = StackSettings()
    started = time.time()
    env = dict(os.environ)
    # The Procfile says `python`: make it this environment's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("ORDERS_PORT", "5002")
    env.setdefault("DASHBOARD_PORT", "8050")
    env.setdefault("EMAIL_SMTP_PORT", "1025")
    env.setdefault("DEVSTACK_RUN_DIR", str(stack.run_dir))
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
    health_dir = stack.run_dir / "health"
    for name in CONSUMERS:
        env.setdefault(f"{name.upper()}_HEALTH_FILE", str(health_dir / name))
    broker = None if "KAFKA_BOOTSTRAP_SERVERS" in env else stack.broker()
    honcho: subprocess.Popen[bytes] | None = None
    try:
        if broker is not None:
            broker.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
            log.info("Kafka ready on %s (data in %s)", broker.bootstrap_servers, broker.data_dir)
        ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                                    topic_prefix=env.get("KAFKA_TOPIC_PREFIX", "")))
        # Honcho stops the services when it gets SIGTERM, which the kernel sends if this process dies.
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile")],
                                  cwd=ROOT, env=env, preexec_fn=die_with_parent(signal.SIGTERM))
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
                f"  SMTP catcher 127.0.0.1:{env['EMAIL_SMTP_PORT']} (mail in {stack.run_dir / 'mail'})\n"
                "  Ctrl-C stops everything.\n\n")
        else:
            log.error("services did not become ready; see the log above")
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        # Cleaning up is bounded (honcho and the broker each get 30 s): let no second signal cut it short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if honcho is not None and honcho.poll() is None:
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
