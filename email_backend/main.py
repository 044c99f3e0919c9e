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

What is known lives on disk, per input partition, in the replica's state file
(``orderflow.statestore``, under ``EMAIL_STATE_DIR``), with two checkpoints:

* ``recorded``: the orders whose outcome Kafka has committed, exact up to the ``order_confirmed``
  offset ``recorded_up_to`` (the input offset, for the reasons given in ``transactions_backend.main``:
  it is what is committed with the outcomes, and every confirmed verdict before it is recorded).
  Written after Kafka's commit; caught up by reading the input from the checkpoint to the group's
  committed offset.
* ``notes``: the ``email_sent_log`` notes of orders not recorded yet, exact up to that topic's offset
  ``notes_up_to``. The notes are written outside the transaction, so they must be found after a crash
  whatever became of the batch: a restore reads the log from this checkpoint to its end. After a
  commit the checkpoint moves past the batch's own notes (their offsets come with their
  acknowledgements): every note before them was read back by the restore that followed its
  batch's rewind, or belongs to an order now recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
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
    Record,
    Stage,
    access_at_start,
    bind_to_topics,
    catch_up,
    committed_offsets,
    ensure_topics,
    parse_value,
)
from orderflow.settings import KafkaSettings, StatefulServiceSettings, configure_logging
from orderflow.statestore import StateStore, StateWriter, state_file
from orderflow.stopflag import StopFlag
from orderflow.tally import Tally
from orderflow.topics import EMAIL_GROUP, EMAIL_SENT_LOG, ORDER_CONFIRMED, ORDER_EMAIL_SENT

log = logging.getLogger(__name__)
tally = Tally(log, "emails")

RECORDED = "recorded"  # order ids whose outcome is committed, per partition of order_confirmed
RECORDED_UP_TO = "recorded_up_to"  # an order_confirmed offset
NOTES = "notes"  # order id -> its email_sent_log note (EmailSent), for orders not recorded yet
NOTES_UP_TO = "notes_up_to"  # an email_sent_log offset


class Settings(StatefulServiceSettings):
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

    def __init__(self, kafka: KafkaSettings, mailer: Mailer, notes: AckedWriter, state: StateStore, *, group: str,
                 sender: str, domain: str, batch_seconds: float = 60.0) -> None:
        self.kafka = kafka
        self.notes = notes
        self.state = state
        self.group = group
        self.batch_seconds = batch_seconds
        self.mailer = mailer
        self.sender = sender
        self.domain = domain
        self.in_topic = kafka.topic(ORDER_CONFIRMED)
        self.out_topic = kafka.topic(ORDER_EMAIL_SENT)
        self.log_topic = kafka.topic(EMAIL_SENT_LOG)
        self.pending: dict[int, set[str]] = {}  # recorded in the batch Kafka has not committed yet
        self.caught_up = 0  # records read back by every restore so far
        self._bound = False  # whether the state file was checked against the topics' ids

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        # Notes of a batch given up on may still be on their way (the broker was away): the log is read
        # only once they are in it, or an email they note would be sent again.
        self.notes.flush()
        self.pending.clear()
        if not self._bound:
            bind_to_topics(self.kafka, self.state, [self.in_topic, self.log_topic])
            self._bound = True
        committed = committed_offsets(self.kafka, self.group, self.in_topic, partitions)
        read = catch_up(self.kafka, self.state, topic=self.in_topic, checkpoint=RECORDED_UP_TO, partitions=partitions,
                        until=committed, fold=self._fold_recorded)
        read += catch_up(self.kafka, self.state, topic=self.log_topic, checkpoint=NOTES_UP_TO, partitions=partitions,
                         fold=self._fold_notes)
        self.caught_up += read
        return {}

    @staticmethod
    def _fold_recorded(tx: StateWriter, records: Sequence[Record]) -> None:
        ids: dict[int, list[str]] = {}
        for r in records:
            try:
                verdict = parse_value(OrderVerdict, r.value)
            except ValueError:
                continue  # dead-lettered when it was read
            if verdict.status == "confirmed":
                ids.setdefault(r.partition, []).append(verdict.order_id)
        for partition, keys in ids.items():
            tx.add(RECORDED, partition, keys)
            tx.remove(NOTES, partition, keys)

    def _fold_notes(self, tx: StateWriter, records: Sequence[Record]) -> None:
        notes: dict[int, dict[str, bytes]] = {}
        for r in records:
            try:
                note = parse_value(EmailSent, r.value)
            except ValueError as exc:
                log.warning("unreadable note at %s/%d/%d skipped: %s", r.topic, r.partition, r.offset, exc)
                continue
            assert r.value is not None  # parse_value refuses an empty value
            notes.setdefault(r.partition, {})[note.order_id] = r.value
        recorded = self.state.find(RECORDED, notes)
        for partition, values in notes.items():
            done = recorded.get(partition, {})
            tx.put(NOTES, partition, {key: value for key, value in values.items() if key not in done})

    def process(self, batch: Sequence[Inbound[OrderVerdict]], ends: dict[int, int]) -> list[Output]:
        wanted: dict[int, set[str]] = {}
        for item in batch:
            if item.value.status == "confirmed":
                wanted.setdefault(item.record.partition, set()).add(item.value.order_id)
        recorded = self.state.find(RECORDED, wanted)
        notes = self.state.find(NOTES, wanted)
        outputs = []
        started = time.monotonic()
        try:
            for item in batch:
                if time.monotonic() - started > self.batch_seconds:
                    # Every delivery so far is in the log: the rewind re-records them without resending.
                    self.notes.settle()
                    raise RetryLater(f"SMTP took over {self.batch_seconds:.0f}s for this batch; resuming")
                p = item.record.partition
                outcome = self._deliver(item.value, p, recorded.get(p, {}), notes.get(p, {}))
                if outcome is not None:
                    outputs.append(Output(self.out_topic, outcome.order_id, outcome.to_bytes()))
            self.notes.settle()  # every note of the batch is in the log before its outcomes are committed
        finally:
            self.mailer.close()
            self.notes.forget()
        return outputs

    def committed(self, ends: dict[int, int]) -> None:
        with self.state.transaction() as tx:
            for partition, ids in self.pending.items():
                tx.add(RECORDED, partition, ids)
                tx.remove(NOTES, partition, ids)
            for partition, end in ends.items():
                tx.advance(RECORDED_UP_TO, partition, end)
                noted = self.notes.acked_end(self.log_topic, partition)
                if noted is not None:
                    tx.advance(NOTES_UP_TO, partition, noted)
        self.pending.clear()

    def _deliver(self, verdict: OrderVerdict, partition: int, recorded: Mapping[str, object],
                 notes: Mapping[str, bytes | None]) -> EmailOutcome | None:
        pending = self.pending.setdefault(partition, set())
        if verdict.status != "confirmed" or verdict.order_id in pending or verdict.order_id in recorded:
            return None
        pending.add(verdict.order_id)
        noted = notes.get(verdict.order_id)
        if noted is not None:
            already = EmailSent.model_validate_json(noted)
            log.info("order %s email was %s before a restart; recording it, not resending", verdict.order_id,
                     already.status, extra={"order_id": verdict.order_id, "status": already.status})
            return EmailOutcome(order_id=verdict.order_id, status=already.status, recipient=verdict.order.user_email,
                                message_id=already.message_id, attempts=already.attempts, error=already.error,
                                order_details=verdict.order.order_details)
        msg = render(verdict, sender=self.sender, domain=self.domain)
        # The previous email's note must be acknowledged before this one is handed over, so a
        # crash can repeat at most the email in flight; its envelope goes out meanwhile.
        delivery = self.mailer.send(msg, before_data=self.notes.settle)
        status = "sent" if delivery.ok else "failed"
        note = EmailSent(order_id=verdict.order_id, status=status, message_id=str(msg["Message-ID"]),
                         attempts=delivery.attempts, error=delivery.error)
        self.notes.send(self.log_topic, verdict.order_id, note.to_bytes())
        (metrics.EMAILS_SENT if delivery.ok else metrics.EMAILS_FAILED).inc()
        tally.note(status)
        log.log(logging.DEBUG if delivery.ok else logging.WARNING, "order %s email %s after %d attempt(s)",
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
    ensure_topics(settings.kafka, timeout=None)  # a broker away at start-up is waited for
    mailer = Mailer(
        settings.smtp_host, settings.smtp_port, username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls, timeout=settings.smtp_timeout, attempts=settings.attempts,
        backoff=settings.backoff_seconds,
    )
    group = settings.kafka.group(EMAIL_GROUP)
    with (AckedWriter(settings.kafka) as notes,
          StateStore.open(state_file(settings.state_dir, group, settings.kafka.replica_id)) as state):
        confirmations = Confirmations(settings.kafka, mailer, notes, state, group=group, sender=settings.sender,
                                      domain=settings.message_id_domain, batch_seconds=settings.batch_seconds)
        Stage(
            name="email_backend", settings=settings.kafka, input_topic=settings.kafka.topic(ORDER_CONFIRMED),
            model=OrderVerdict, processor=confirmations, group_id=group,
            health_file=settings.health_file, stop=StopFlag().install(),
        ).run()
