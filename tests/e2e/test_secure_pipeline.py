"""The pipeline over SASL_SSL: a broker with a TLS listener (a throw-away CA made here with openssl)
and SCRAM users added when its storage is formatted; every service and the test's own clients reach
it only there. A wrong password ends each service's start with the setting to fix."""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from devtools.devstack import answers
from devtools.kafkasecurity import Certificates, SecureListener, make_certificates
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, EmailOutcome, OrderVerdict
from orderflow.kafka import KafkaAccessDenied, check_access, ensure_topics
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_EMAIL_SENT
from tests.e2e.test_pipeline import post
from tests.support import (
    LocalKafka,
    ServiceProcess,
    SmtpSink,
    free_port,
    login_cookie,
    operator_env,
    read_models,
    service_env,
    store_env,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("java") is None or shutil.which("openssl") is None,
                                                  reason="starts its own broker, makes certificates with openssl")]
USER, PASSWORD = "orderflow", "s3cret-pass"
SERVICES = ("order_projector", "orders_backend", "transactions_backend", "email_backend", "analytics_backend",
            "dashboard")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    # Issued for 127.0.0.1 only: a client that connects to "localhost" must see the name not match.
    return make_certificates(tmp_path_factory.mktemp("tls"), hosts=("127.0.0.1",))


@pytest.fixture(scope="module")
def secure_broker(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    listener = SecureListener(free_port(), certificates.keystore, {USER: PASSWORD})
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), free_port(), free_port(), heap="384m", listener=listener)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def secure_settings(secure_broker: LocalKafka, certificates: Certificates) -> KafkaSettings:
    """Settings that reach the broker only over SASL_SSL, as SCRAM user; the topics exist (made over it)."""
    assert secure_broker.listener is not None
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{secure_broker.listener.port}", security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_username=USER, sasl_password=PASSWORD,
        ssl_cafile=str(certificates.ca), topic_prefix=f"s{uuid.uuid4().hex[:8]}.", partitions=2,
        replica_id=uuid.uuid4().hex[:8])
    ensure_topics(settings)
    return settings


def get_json(url: str, cookie: str | None = None) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_an_order_goes_through_every_service_over_sasl_ssl(secure_settings: KafkaSettings, smtp_sink: SmtpSink,
                                                            logs_dir: Path) -> None:
    api, dashboard = free_port(), free_port()
    env = service_env(secure_settings, ORDERS_PORT=str(api), ORDERS_HOST="127.0.0.1", ORDERS_WORKERS="1",
                      DASHBOARD_PORT=str(dashboard), EMAIL_SMTP_PORT=str(smtp_sink.port), **store_env(logs_dir),
                      **operator_env())
    services = [ServiceProcess(m, env, logs_dir).start() for m in SERVICES]
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{api}/healthz"), 60, what="the API")
        status, placed = post(f"http://127.0.0.1:{api}/order", {
            "user_id": "u-1", "order_id": "tls-1", "user_email": "ada@example.com",
            "order_details": {"product": "chair", "price": "42.50"}})
        assert status == 201, placed
        found = get_json(f"http://127.0.0.1:{api}/order/tls-1?wait=10&until=emailed")
        assert found["status"] == "confirmed" and found["email"]["status"] == "sent"
        wait_until(lambda: smtp_sink.received(), 60, what="the confirmation email")
        assert [m["X-Order-Id"] for m in smtp_sink.received()] == ["tls-1"]

        def totals():  # type: ignore[no-untyped-def]
            return merge(read_models(secure_settings, secure_settings.topic(ANALYTICS_RESULT), AnalyticsSnapshot))

        wait_until(lambda: totals().orders_count == 1, 60, what="the order counted")
        assert totals().revenue == Decimal("42.50")
        assert [v.order_id for v in read_models(secure_settings, secure_settings.topic(ORDER_CONFIRMED),
                                                OrderVerdict)] == ["tls-1"]
        assert [o.status for o in read_models(secure_settings, secure_settings.topic(ORDER_EMAIL_SENT),
                                              EmailOutcome)] == ["sent"]
        seen: dict = {}  # type: ignore[type-arg]
        cookie = login_cookie(f"http://127.0.0.1:{dashboard}")

        def on_dashboard() -> bool:
            seen.update(get_json(f"http://127.0.0.1:{dashboard}/api/state", cookie))
            return bool(seen["orders"])

        wait_until(on_dashboard, 60, what="the order on the dashboard")
        assert seen["orders"][0]["order_id"] == "tls-1" and seen["feed"]["connected"] is True, seen
    finally:
        codes = {s.name: s.stop() for s in services}
    assert all(code == 0 for code in codes.values()), {s.name: s.log()[-2000:] for s in services}


def test_a_wrong_password_ends_every_service_start_naming_the_setting(secure_settings: KafkaSettings,
                                                                      logs_dir: Path) -> None:
    wrong = secure_settings.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    env = service_env(wrong, ORDERS_PORT=str(free_port()), DASHBOARD_PORT=str(free_port()), **store_env(logs_dir))
    services = [ServiceProcess(m, env, logs_dir).start() for m in SERVICES]
    try:
        wait_until(lambda: not any(s.alive() for s in services), 90, 0.5, "every service to give up")
        for service in services:
            assert service.process is not None and service.process.returncode != 0, service.name
            log = service.log()
            assert "refused the SASL credentials" in log and "KAFKA_SASL_PASSWORD" in log, (service.name, log[-2000:])
            assert "not-the-password" not in log
    finally:
        for service in services:
            service.kill()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_each_sasl_mechanism_reaches_the_cluster(secure_settings: KafkaSettings, mechanism: str) -> None:
    assert check_access(secure_settings.model_copy(update={"sasl_mechanism": mechanism}))


def test_an_untrusted_certificate_names_the_ca_setting(secure_settings: KafkaSettings, tmp_path: Path) -> None:
    other = make_certificates(tmp_path / "other", ca_name="another-ca")
    with pytest.raises(KafkaAccessDenied, match=rf"not signed by KAFKA_SSL_CAFILE \({other.ca}\)"):
        check_access(secure_settings.model_copy(update={"ssl_cafile": str(other.ca)}))


def test_a_host_the_certificate_does_not_name_is_refused(secure_settings: KafkaSettings) -> None:
    elsewhere = secure_settings.bootstrap_servers.replace("127.0.0.1", "localhost")
    with pytest.raises(KafkaAccessDenied, match="does not name the host in KAFKA_BOOTSTRAP_SERVERS"):
        check_access(secure_settings.model_copy(update={"bootstrap_servers": elsewhere}))
    no_check = secure_settings.model_copy(update={"bootstrap_servers": elsewhere, "ssl_check_hostname": False})
    assert check_access(no_check)
