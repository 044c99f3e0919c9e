"""Personal data kept out of logs: addresses masked (``a***@example.com``), card numbers cut to their
last four digits, in every log line of every service, whatever code wrote it.

The filter sits on the handler, so a message from a library (smtplib's refusal naming a recipient, a
validation error quoting a value) is masked like our own.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Broad on purpose: whatever looks like an address in free text, including non-ASCII ones.
_EMAIL = re.compile(r"([^\s@<>()\[\]\"',;:=]+)@([^\s@<>()\[\]\"',;:=]+\.[^\s@<>()\[\]\"',;:=]+)")
# 15 to 19 digits (every card issued today), possibly grouped by spaces or hyphens, as card numbers are
# written; shorter runs are left alone, so a 13-digit millisecond timestamp is never taken for one.
_CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){14,18}(?![0-9])")
# What a LogRecord carries of its own; anything else was given with ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def mask_email(address: str) -> str:
    """``ada@example.com`` -> ``a***@example.com``: enough to tell addresses apart, not to write to one."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return f"****{digits[-4:]}" if _luhn(digits) else match.group(0)


def redact(text: str) -> str:
    """``text`` with every address masked and every card number (a Luhn-valid run of 15 to 19 digits)
    cut to its last four."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _CARD.sub(_card, text)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Masks the message (with its arguments merged in) and every ``extra=`` text field of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
