"""email_backend: confirmed verdicts in ``order_confirmed`` -> SMTP -> ``order_email_sent``.

SMTP is outside Kafka's transactions, so each delivery (accepted, or refused for good) is also
noted in ``email_sent_log``, outside the transaction, acknowledged before the next email is handed
over (its envelope is sent while the note travels). After a crash or a
rewind, an order found in that log but without an outcome gets its outcome recorded from the note,
without a second email. What stays open is the instant between the server's 250 and the note
reaching Kafka: an email in that instant is sent again, with the same ``Message-ID``, which mail
stores use to show it once.

A batch spends at most ``EMAIL_BATCH_SECONDS`` on SMTP; past that, or when the server is down, the
stage rewinds and goes on later, so a slow server never holds a consumer past its poll interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from email_backend.mailer import Mailer
from email_backend.render import render
from orderflow import metrics
from orderflow.errors import RetryLater
from orderflow.events import EmailOutcome, EmailSent, OrderVerdict
from orderflow.kafka import (
    AckedWriter,
    Inbound,
    Output,
    Stage,
    access_at_start,
    ensure_topics,
    keys_by_partition,
    read_topic,
)
from orderflow.settings import ConsumerServiceSettings, KafkaSettings, configure_logging
from orderflow.stopflag import StopFlag
from orderflow.topics import EMAIL_GROUP, EMAIL_SENT_LOG, ORDER_CONFIRMED, ORDER_EMAIL_SENT

log = logging.getLogger(__name__)


class Settings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMAIL_")
    DEFAULT_METRICS_PORT: ClassVar[int] = 9102

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    sender: str = "The Shop <orders@shop.example>"
    message_id_domain: str = "shop.example"
    attempts: int = Field(6, ge=1)
    backoff_seconds: float = Field(0.5, ge=0, description="first retry delay; doubles each time")
    batch_seconds: float = Field(60.0, gt=0, description="SMTP time one batch may take before it is resumed later")


class Confirmations:
    """Emails each confirmed order once; ``order_confirmed``, ``order_email_sent`` and
    ``email_sent_log`` are co-partitioned by ``order_id``."""

    def __init__(self, kafka: KafkaSettings, mailer: Mailer, notes: AckedWriter, *, sender: str, domain: str,
                 batch_seconds: float = 60.0) -> None:
        self.kafka = kafka
        self.notes = notes
        self.batch_seconds = batch_seconds
        self.mailer = mailer
        self.sender = sender
        self.domain = domain
        self.out_topic = kafka.topic(ORDER_EMAIL_SENT)
        self.log_topic = kafka.topic(EMAIL_SENT_LOG)
        self.recorded: dict[int, set[str]] = {}
        self.sent: dict[int, dict[str, EmailSent]] = {}

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        self.recorded.update(keys_by_partition(self.kafka, self.out_topic, partitions))
        self.sent.update({p: {} for p in partitions})
        for r in read_topic(self.kafka, self.log_topic, partitions=list(partitions)):
            if r.value is not None:
                note = EmailSent.model_validate_json(r.value)
                self.sent[r.partition][note.order_id] = note
        return {}

    def process(self, batch: Sequence[Inbound[OrderVerdict]], ends: dict[int, int]) -> list[Output]:
        outputs = []
        started = time.monotonic()
        try:
            for item in batch:
                if time.monotonic() - started > self.batch_seconds:
                    # Every delivery so far is in the log: the rewind re-records them without resending.
                    self.notes.settle()
                    raise RetryLater(f"SMTP took over {self.batch_seconds:.0f}s for this batch; resuming")
                outcome = self._deliver(item.value, item.record.partition)
                if outcome is not None:
                    outputs.append(Output(self.out_topic, outcome.order_id, outcome.to_bytes()))
            self.notes.settle()  # every note of the batch is in the log before its outcomes are committed
        finally:
            self.mailer.close()
            self.notes.forget()
        return outputs

    def _deliver(self, verdict: OrderVerdict, partition: int) -> EmailOutcome | None:
        recorded = self.recorded.setdefault(partition, set())
        if verdict.status != "confirmed" or verdict.order_id in recorded:
            return None
        recorded.add(verdict.order_id)
        already = self.sent.setdefault(partition, {}).get(verdict.order_id)
        if already is not None:
            log.info("order %s email was %s before a restart; recording it, not resending", verdict.order_id,
                     already.status, extra={"order_id": verdict.order_id, "status": already.status})
            return EmailOutcome(order_id=verdict.order_id, status=already.status, recipient=verdict.order.user_email,
                                message_id=already.message_id, attempts=already.attempts, error=already.error,
                                order_details=verdict.order.order_details)
        msg = render(verdict, sender=self.sender, domain=self.domain)
        try:
            # The previous email's note must be acknowledged before this one is handed over, so a
            # crash can repeat at most the email in flight; its envelope goes out meanwhile.
            delivery = self.mailer.send(msg, before_data=self.notes.settle)
        except RetryLater:
            recorded.discard(verdict.order_id)
            raise
        status = "sent" if delivery.ok else "failed"
        note = EmailSent(order_id=verdict.order_id, status=status, message_id=str(msg["Message-ID"]),
                         attempts=delivery.attempts, error=delivery.error)
        self.sent[partition][verdict.order_id] = note
        self.notes.send(self.log_topic, verdict.order_id, note.to_bytes())
        (metrics.EMAILS_SENT if delivery.ok else metrics.EMAILS_FAILED).inc()
        log.log(logging.INFO if delivery.ok else logging.WARNING, "order %s email %s after %d attempt(s)",
                verdict.order_id, status, delivery.attempts,
                extra={"order_id": verdict.order_id, "status": status, "attempts": delivery.attempts,
                       "error": delivery.error})
        return EmailOutcome(
            order_id=verdict.order_id, status=status,
            recipient=verdict.order.user_email, message_id=str(msg["Message-ID"]),
            attempts=delivery.attempts, error=delivery.error, order_details=verdict.order.order_details,
        )


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    access_at_start(settings.kafka)
    metrics.serve(settings, metrics.STAGE, metrics.EMAIL)
    ensure_topics(settings.kafka)
    mailer = Mailer(
        settings.smtp_host, settings.smtp_port, username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls, timeout=settings.smtp_timeout, attempts=settings.attempts,
        backoff=settings.backoff_seconds,
    )
    with AckedWriter(settings.kafka) as notes:
        confirmations = Confirmations(settings.kafka, mailer, notes, sender=settings.sender,
                                      domain=settings.message_id_domain, batch_seconds=settings.batch_seconds)
        Stage(
            name="email_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_CONFIRMED),
            model=OrderVerdict, processor=confirmations, group_id=settings.kafka.group(EMAIL_GROUP),
            health_file=settings.health_file, stop=StopFlag().install(),
        ).run()
