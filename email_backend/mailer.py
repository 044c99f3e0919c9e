"""The SMTP edge: one connection reused across a batch, retries with exponential backoff."""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    error: str | None = None


def permanent(exc: Exception) -> bool:
    """A 5xx answer will not change on retry (bad recipient, message refused)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


class Mailer:
    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0, attempts: int = 4,
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

    def send(self, msg: EmailMessage) -> Delivery:
        """Deliver ``msg``; after the last failed attempt, say why instead of raising."""
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                self._connect().send_message(msg)
                return Delivery(True, attempt)
            except (smtplib.SMTPException, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("sending %s failed (attempt %d/%d): %s", msg["Message-ID"], attempt,
                            self.attempts, error)
                self.close()
                if permanent(exc):
                    return Delivery(False, attempt, error)
                if attempt < self.attempts:
                    time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
        return Delivery(False, self.attempts, error)
