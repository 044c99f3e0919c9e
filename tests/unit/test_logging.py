"""One JSON object per log line, with the order_id of the event, so grep follows an order."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import ValidationError

from orderflow.settings import LogSettings, log_formatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("transactions_backend.main")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, args, None, extra=extra)


def test_json_lines_carry_the_order_id_and_the_usual_fields() -> None:
    line = log_formatter("json").format(record("order %s %s", "A-1", "confirmed", order_id="A-1", status="confirmed"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["order_id"] == "A-1" and entry["status"] == "confirmed"
    assert entry["message"] == "order A-1 confirmed"
    assert entry["level"] == "INFO" and entry["logger"] == "transactions_backend.main"
    assert entry["time"].endswith("+00:00") and isinstance(entry["process"], int)


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed", order_id="B-2")
        rec.exc_info = sys.exc_info()
    line = log_formatter("json").format(rec)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exc_info"]


def test_text_format_for_people() -> None:
    line = log_formatter("text").format(record("order %s confirmed", "A-1", order_id="A-1"))
    assert line.endswith("transactions_backend.main: order A-1 confirmed") and not line.startswith("{")


def test_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert LogSettings().format == "json"
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert LogSettings().format == "text"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        LogSettings()
