"""orderflow.kafka.access: which bootstrap failures name a setting, and which one."""

from __future__ import annotations

from orderflow.kafka.access import denial, lost_in_sasl
from orderflow.kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError
from orderflow.settings import KafkaSettings

SASL = KafkaSettings(bootstrap_servers="b:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                     sasl_username="shop", sasl_password="secret", ssl_cafile="/etc/ca.pem")


def test_a_refused_password_names_the_credentials_and_never_the_password() -> None:
    found = denial(SASL, SaslAuthenticationFailedError("Authentication failed"))
    assert found is not None
    text = str(found)
    assert "KAFKA_SASL_USERNAME (shop)" in text and "KAFKA_SASL_PASSWORD" in text and "SCRAM-SHA-512" in text
    assert "secret" not in text.replace("KAFKA_SASL_PASSWORD", "")


def test_tls_failures_name_the_ca_or_the_host() -> None:
    untrusted = KafkaConnectionError("Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                     "self-signed certificate in certificate chain")
    assert "not signed by KAFKA_SSL_CAFILE (/etc/ca.pem)" in str(denial(SASL, untrusted))
    other_host = KafkaConnectionError("Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                      "failed: IP address mismatch, certificate is not valid for 'b'")
    assert "does not name the host in KAFKA_BOOTSTRAP_SERVERS" in str(denial(SASL, other_host))
    plain = KafkaSettings(bootstrap_servers="b:9093")
    tls_alert = Exception("Invalid frame length: 352518912")
    assert "KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not" in str(denial(plain, tls_alert))


def test_failures_that_retrying_may_cure_name_nothing() -> None:
    assert denial(SASL, KafkaConnectionError("111 ECONNREFUSED")) is None
    assert denial(SASL, KafkaConnectionError("socket disconnected")) is None


def test_a_connection_lost_during_sasl_is_told_from_one_lost_before_it() -> None:
    during = "<KafkaConnection node_id=bootstrap-0 broker_version=(4, 3) (disconnected)>: Connection lost: x"
    before = "<KafkaConnection node_id=bootstrap-0 broker_version=unknown (disconnected)>: Connection lost: x"
    assert lost_in_sasl(SASL, during) and not lost_in_sasl(SASL, before)
    assert not lost_in_sasl(KafkaSettings(), during)  # no SASL, no SASL exchange to fail
