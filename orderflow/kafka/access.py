"""The start-up check of every service and tool: can this client reach the cluster with its settings?

kafka-python 3.0 does not hand a rejected password or an untrusted certificate to the caller while
it bootstraps: it logs the failure, tries again until ``bootstrap_timeout_ms`` and then raises a
bare timeout. So the check connects on a thread and listens to the client's own log records for the
first bootstrap failure: one that retrying cannot cure (SASL refused, TLS verification failed) is
raised at once as ``KafkaAccessDenied``, with the setting to look at. A broker that refuses
credentials often just closes the connection before the client has read why (the client then
reports a disconnect); connections lost in the SASL exchange again and again count as a refusal.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from orderflow.kafka.clients import make_admin, make_producer
from orderflow.kafka.cluster import cluster_info
from orderflow.kafka.errors import (
    BrokerUnavailable,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
)
from orderflow.settings import KafkaSettings

log = logging.getLogger(__name__)
CLIENT_LOGGER = "kafka"  # kafka-python logs bootstrap failures under kafka.net.*
LOST_IN_SASL = 3  # connections lost between the version exchange and the end of SASL that count as a refusal


class KafkaAccessDenied(RuntimeError):
    """The cluster refused this client's credentials or TLS: a setting is wrong; retrying will not help."""


def refused_credentials(settings: KafkaSettings, why: str) -> KafkaAccessDenied:
    return KafkaAccessDenied(
        f"Kafka at {settings.bootstrap_servers} refused the SASL credentials: check KAFKA_SASL_USERNAME "
        f"({settings.sasl_username}) and KAFKA_SASL_PASSWORD, and KAFKA_SASL_MECHANISM ({settings.sasl_mechanism}) "
        f"[{why}]")


def lost_in_sasl(settings: KafkaSettings, message: str) -> bool:
    """Whether a client log line tells of a connection lost during SASL: after the broker answered the
    version exchange (its version is known), before the connection was ready."""
    return (settings.security_protocol.startswith("SASL_") and ": Connection lost: " in message
            and "broker_version=(" in message)


def denial(settings: KafkaSettings, error: BaseException) -> KafkaAccessDenied | None:
    """The setting at fault, if ``error`` (a failed bootstrap connection) is one retrying cannot cure."""
    where = f"Kafka at {settings.bootstrap_servers}"
    text = str(error)
    if isinstance(error, SaslAuthenticationFailedError):
        return refused_credentials(settings, text)
    lowered = text.lower()
    if "invalid frame length: 3525" in lowered:  # 0x1503xxxx: a TLS alert read as a Kafka frame's length
        return KafkaAccessDenied(
            f"{where} speaks TLS, and KAFKA_SECURITY_PROTOCOL={settings.security_protocol} does not: use SSL or "
            f"SASL_SSL, or the port of a listener without TLS [{text}]")
    if not isinstance(error, KafkaConnectionError):
        return None
    if "mismatch" in lowered and "certificate verify failed" in lowered:
        return KafkaAccessDenied(
            f"{where}: the broker's certificate does not name the host in KAFKA_BOOTSTRAP_SERVERS; use the name "
            f"it was issued for (KAFKA_SSL_CHECK_HOSTNAME=false turns the check off, and its protection) [{text}]")
    if "certificate verify failed" in lowered:
        trusted = f"KAFKA_SSL_CAFILE ({settings.ssl_cafile})" if settings.ssl_cafile else \
            "the system's CAs (KAFKA_SSL_CAFILE is not set)"
        return KafkaAccessDenied(f"{where}: the broker's certificate is not signed by {trusted} [{text}]")
    if "certificate required" in lowered or "bad certificate" in lowered or "unknown ca" in lowered:
        return KafkaAccessDenied(
            f"{where} refused this client's certificate: check KAFKA_SSL_CERTFILE ({settings.ssl_certfile}) "
            f"and KAFKA_SSL_KEYFILE [{text}]")
    return None


class _BootstrapWatch(logging.Handler):
    """Keeps the first bootstrap failure that ``denial`` names among the log records of the threads
    started after it (the check's client), not of clients that were there before."""

    def __init__(self, settings: KafkaSettings, done: threading.Event) -> None:
        super().__init__(logging.WARNING)
        self.settings, self.done = settings, done
        self.denied: KafkaAccessDenied | None = None
        self.last: BaseException | None = None  # the latest failure, named when nothing answers
        self.lost_in_sasl = 0
        self.earlier = {thread.ident for thread in threading.enumerate()}

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread in self.earlier or self.denied is not None:
            return
        if lost_in_sasl(self.settings, record.getMessage()):
            self.lost_in_sasl += 1
            if self.lost_in_sasl >= LOST_IN_SASL:
                self.denied = refused_credentials(
                    self.settings, f"the broker closed the connection during SASL authentication {LOST_IN_SASL} "
                    "times in a row")
                self.done.set()
                return
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException):
                if not isinstance(arg, KafkaTimeoutError):  # the client giving up says nothing new
                    self.last = arg
                self.denied = denial(self.settings, arg)
                if self.denied is not None:
                    self.done.set()
                    return


def check_access(settings: KafkaSettings, timeout: float = 10.0) -> str:
    """Connect with ``settings`` and return the cluster's id.

    Raises ``KafkaAccessDenied`` as soon as the cluster refuses the credentials or the TLS handshake
    fails, ``BrokerUnavailable`` when no broker answered within ``timeout`` seconds.
    """
    done = threading.Event()
    watch = _BootstrapWatch(settings, done)
    client_log = logging.getLogger(CLIENT_LOGGER)
    level = client_log.level
    if client_log.getEffectiveLevel() > logging.WARNING:
        client_log.setLevel(logging.WARNING)  # the failures are logged at WARNING
    client_log.addHandler(watch)
    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            # A producer first: one that cannot bootstrap leaves no thread behind (an admin client's I/O
            # thread would run on for good), and gunicorn's master forks its workers after this check.
            make_producer(settings, acks=1, enable_idempotence=False,
                          bootstrap_timeout_ms=int(timeout * 1000)).close(timeout=0)
            admin = make_admin(settings, bootstrap_timeout_ms=int(timeout * 1000),
                               request_timeout_ms=int(timeout * 1000))
            try:
                outcome["cluster_id"] = cluster_info(admin).cluster_id
            finally:
                admin.close()
        except Exception as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc
        done.set()

    # A daemon: after a denial the client goes on retrying until its own timeout, and must not hold
    # up the process exiting with the message.
    threading.Thread(target=connect, name="kafka-access-check", daemon=True).start()
    try:
        done.wait(timeout + 5)
    finally:
        client_log.removeHandler(watch)
        client_log.setLevel(level)
    if watch.denied is not None:
        raise watch.denied
    if "cluster_id" in outcome:
        return str(outcome["cluster_id"])
    raise BrokerUnavailable(f"no Kafka broker answered at {settings.bootstrap_servers} within {timeout:.0f}s"
                            + _hint(settings, watch.last))


def _hint(settings: KafkaSettings, last: BaseException | None) -> str:
    """What the last failed connection suggests, when a broker was there but no answer came."""
    if last is None:
        return ""
    text = str(last)
    if "ssl" in text.lower():
        return f" (TLS failed: {text}); does the listener on that port speak TLS? check KAFKA_SECURITY_PROTOCOL"
    if "disconnected" in text and not settings.security_protocol.endswith("SSL"):
        return (f" (the broker closed the connection: {text}); a listener that expects TLS or SASL? check "
                f"KAFKA_SECURITY_PROTOCOL ({settings.security_protocol})")
    return f" (last: {text})"


def access_at_start(settings: KafkaSettings, timeout: float = 10.0) -> None:
    """The check as a process's first step: a denial is logged and ends the process (exit status 2);
    an unreachable cluster is only logged, since the services wait for a broker that starts late."""
    try:
        cluster_id = check_access(settings, timeout)
    except KafkaAccessDenied as exc:
        log.critical("%s", exc)
        raise SystemExit(2) from exc
    except BrokerUnavailable as exc:
        log.warning("%s; carrying on, the broker may start later", exc)
        return
    log.info("Kafka cluster %s reached at %s (%s)", cluster_id, settings.bootstrap_servers,
             settings.security_protocol)
