"""email_backend: confirmed verdicts in ``order_confirmed`` -> SMTP -> ``order_email_sent``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from email_backend.mailer import Mailer
from email_backend.render import render
from orderflow.events import EmailOutcome, OrderVerdict
from orderflow.kafka_io import ensure_topics, read_topic
from orderflow.settings import ConsumerServiceSettings, KafkaSettings, configure_logging
from orderflow.stage import Inbound, Output, Stage, StopFlag
from orderflow.topics import EMAIL_GROUP, ORDER_CONFIRMED, ORDER_EMAIL_SENT

log = logging.getLogger(__name__)


class Settings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMAIL_")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    sender: str = "The Shop <orders@shop.example>"
    message_id_domain: str = "shop.example"
    attempts: int = Field(4, ge=1)
    backoff_seconds: float = Field(0.5, ge=0)


class Confirmations:
    """Emails each confirmed order once; orders already recorded in ``order_email_sent`` are skipped.

    ``order_confirmed`` and ``order_email_sent`` are co-partitioned by ``order_id``.
    """

    def __init__(self, kafka: KafkaSettings, mailer: Mailer, *, sender: str, domain: str) -> None:
        self.kafka = kafka
        self.mailer = mailer
        self.sender = sender
        self.domain = domain
        self.out_topic = kafka.topic(ORDER_EMAIL_SENT)
        self.done: dict[int, set[str]] = {}

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        for p in partitions:
            self.done[p] = {r.key.decode() for r in read_topic(self.kafka, self.out_topic, partitions=[p])
                            if r.key is not None}
        return {}

    def process(self, batch: Sequence[Inbound[OrderVerdict]]) -> list[Output]:
        outputs = []
        try:
            for item in batch:
                verdict = item.value
                done = self.done.setdefault(item.record.partition, set())
                if verdict.status != "confirmed" or verdict.order_id in done:
                    continue
                msg = render(verdict, sender=self.sender, domain=self.domain)
                delivery = self.mailer.send(msg)
                done.add(verdict.order_id)
                outcome = EmailOutcome(
                    order_id=verdict.order_id, status="sent" if delivery.ok else "failed",
                    recipient=verdict.order.user_email, message_id=str(msg["Message-ID"]),
                    attempts=delivery.attempts, error=delivery.error,
                )
                log.info("order %s email %s after %d attempt(s)", verdict.order_id, outcome.status,
                         outcome.attempts)
                outputs.append(Output(self.out_topic, verdict.order_id, outcome.to_bytes()))
        finally:
            self.mailer.close()
        return outputs


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    ensure_topics(settings.kafka)
    mailer = Mailer(
        settings.smtp_host, settings.smtp_port, username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls, timeout=settings.smtp_timeout, attempts=settings.attempts,
        backoff=settings.backoff_seconds,
    )
    Stage(
        name="email_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_CONFIRMED),
        model=OrderVerdict,
        processor=Confirmations(settings.kafka, mailer, sender=settings.sender,
                                domain=settings.message_id_domain),
        group_id=settings.kafka.group(EMAIL_GROUP), health_file=settings.health_file, stop=StopFlag().install(),
    ).run()
