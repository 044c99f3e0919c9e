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
from dataclasses import dataclass
from email.message import Message

from orderflow.stage import RetryLater

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

    def send(self, msg: Message) -> Delivery:
        """Deliver ``msg``; a refused message comes back as a failed ``Delivery`` with the reason."""
        error, server_down = "", False
        for attempt in range(1, self.attempts + 1):
            try:
                self._connect().send_message(msg)
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
