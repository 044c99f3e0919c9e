"""The SMTP edge: one connection reused across a batch, retries with exponential backoff.

Two kinds of failure, handled differently:
* about one message (the server answers 4xx or 5xx to it): retried on 4xx, then reported as a
  failed ``Delivery``; a 5xx is final at once;
* about the server (cannot connect, connection lost, login refused, TLS required): not the
  order's fault, so ``MailerUnavailable`` is raised and the stage retries the batch later.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.policy import SMTPUTF8
from email.utils import getaddresses, parseaddr

from orderflow.errors import RetryLater

log = logging.getLogger(__name__)

MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)
SERVER_ERRORS = (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError)


class MailerUnavailable(RetryLater):
    """The SMTP server cannot take mail now (down, unreachable, or refusing our login)."""


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    error: str | None = None


def reply_code(exc: Exception) -> int:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return min(code for code, _ in exc.recipients.values())
    return int(getattr(exc, "smtp_code", 0))


def _reset(smtp: smtplib.SMTP) -> None:
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        pass  # the connection is closed and reopened on the next attempt anyway


def transfer(smtp: smtplib.SMTP, msg: Message, before_data: Callable[[], None]) -> None:
    """``smtplib.SMTP.sendmail`` in its steps (MAIL, RCPT, DATA), raising its exceptions, with
    ``before_data`` run between the accepted envelope and DATA. Unlike ``send_message``, a non-ASCII
    address on a server without SMTPUTF8 is refused as this message's failure (553), not the server's."""
    sender = parseaddr(msg["From"])[1]
    recipients = [address for _, address in getaddresses(msg.get_all("To", []))]
    options: list[str] = []
    smtp.ehlo_or_helo_if_needed()
    if not "".join([sender, *recipients]).isascii():
        if not smtp.has_extn("smtputf8"):  # the address cannot be written: this message fails, not the server
            raise smtplib.SMTPRecipientsRefused({r: (553, b"SMTPUTF8 needed, not offered") for r in recipients})
        options = ["SMTPUTF8"]
    code, reply = smtp.mail(sender, options)
    if code != 250:
        _reset(smtp)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {}
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(recipients):
        _reset(smtp)
        raise smtplib.SMTPRecipientsRefused(refused)
    before_data()
    # CRLF line ends, as SMTP requires (smtplib converts a str but sends bytes as they are); with
    # SMTPUTF8 the headers go out as UTF-8, otherwise they are ASCII (RFC 2047 where needed).
    code, reply = smtp.data(msg.as_bytes(policy=SMTPUTF8 if options else msg.policy.clone(linesep="\r\n")))
    if code != 250:
        _reset(smtp)
        raise smtplib.SMTPDataError(code, reply)


class Mailer:
    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0, attempts: int = 6,
                 backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls = starttls
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None

    def send(self, msg: Message, before_data: Callable[[], None] = lambda: None) -> Delivery:
        """Deliver ``msg``; a refused message comes back as a failed ``Delivery`` with the reason.

        ``before_data`` runs once the server has accepted the envelope and before the message is
        handed over, which is when the server takes it on: work that must be done before the next
        email counts as sent (a Kafka ack) can overlap this email's envelope round trips.
        """
        error, server_down = "", False
        for attempt in range(1, self.attempts + 1):
            try:
                transfer(self._connect(), msg, before_data)
                return Delivery(True, attempt)
            except SERVER_ERRORS as exc:
                self.close()
                raise MailerUnavailable(f"SMTP login or TLS refused: {exc}") from exc
            except MESSAGE_ERRORS as exc:
                error, server_down = f"{type(exc).__name__}: {exc}", False
                if reply_code(exc) >= 500:
                    return Delivery(False, attempt, error)
            except (smtplib.SMTPException, OSError) as exc:
                error, server_down = f"{type(exc).__name__}: {exc}", True
            log.warning("sending %s failed (attempt %d/%d): %s", msg["Message-ID"], attempt, self.attempts, error)
            self.close()
            if attempt < self.attempts:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
        if server_down:
            raise MailerUnavailable(f"SMTP server {self.host}:{self.port} unreachable: {error}")
        return Delivery(False, self.attempts, error)
