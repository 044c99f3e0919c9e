"""What every bench step shares: figures with median/min/max, the report, sample records, group progress."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from orderflow.events import OrderRequest, utcnow
from orders_backend.orders import place
from transactions_backend.rules import Limits, decide

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# The README's order: two lines and a card. Every 20th order carries a card that fails the checksum
# (rejected by transactions_backend), so the stages see both verdicts.
ORDER_BODY: dict[str, Any] = {
    "user_id": "u-42",
    "user_email": "ada@example.com",
    "order_details": {"items": [
        {"product": "Oak chair", "quantity": 4, "unit_price": "89.90"},
        {"product": "Dining table", "quantity": 1, "unit_price": "449.00"},
    ]},
    "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/29"},
}
BAD_CARD = "4111 1111 1111 1112"


def order_json(user_id: str, order_id: str | None = None) -> bytes:
    """The README's order as a client sends it, tagged by ``user_id``; without ``order_id`` the server makes one."""
    body = {**ORDER_BODY, "user_id": user_id, **({"order_id": order_id} if order_id else {})}
    return json.dumps(body, separators=(",", ":")).encode()
REJECT_EVERY = 20


def say(text: str) -> None:
    """Progress for the person running the bench (stderr keeps stdout for the table)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


@dataclass
class Figure:
    """One measured quantity over rounds: median, min and max are what the report shows."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float | None) -> None:
        if value is not None:
            self.values.append(float(value))

    def summary(self) -> dict[str, Any]:
        if not self.values:
            return {"median": None, "min": None, "max": None, "n": 0}
        return {"median": statistics.median(self.values), "min": min(self.values), "max": max(self.values),
                "n": len(self.values), "values": self.values}


@dataclass
class Row:
    """A row of the table: a named thing with figures (rate, p50, p99...) and, maybe, a ratio to a base row."""

    section: str
    name: str
    unit: str = "rec/s"
    figures: dict[str, Figure] = field(default_factory=dict)
    ratio_to: str | None = None
    note: str = ""

    def fig(self, key: str) -> Figure:
        return self.figures.setdefault(key, Figure())

    def median(self, key: str = "rate") -> float | None:
        return self.figures[key].summary()["median"] if key in self.figures else None


class Report:
    """Rows in the order they were measured, plus free-form facts (sizes, settings, choices)."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.facts: dict[str, Any] = {}
        self.started = time.time()

    def row(self, section: str, name: str, **kwargs: Any) -> Row:
        key = f"{section}/{name}"
        if key not in self.rows:
            self.rows[key] = Row(section, name, **kwargs)
        return self.rows[key]

    def ratio(self, row: Row) -> float | None:
        if not row.ratio_to or row.ratio_to not in self.rows:
            return None
        base, this = self.rows[row.ratio_to].median(), row.median()
        return this / base if base and this is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "duration_s": round(time.time() - self.started, 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "facts": self.facts,
            "rows": [
                {"section": r.section, "name": r.name, "unit": r.unit, "note": r.note, "ratio_to": r.ratio_to,
                 "ratio": self.ratio(r), **{k: f.summary() for k, f in r.figures.items()}}
                for r in self.rows.values()
            ],
        }

    def write(self, path: Path = RESULTS / "latest.json") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        return path


# -- sample records ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Samples:
    """Byte templates of a typical OrderPlaced and its verdicts; ids are swapped in per record (same size)."""

    order: bytes
    rejected_order: bytes
    verdict: bytes
    rejected_verdict: bytes
    order_id: bytes

    @classmethod
    def make(cls) -> Samples:
        good = place(OrderRequest.model_validate({**ORDER_BODY, "order_id": "0" * 32}), utcnow())
        bad_body = {**ORDER_BODY, "order_id": "0" * 32, "payment": {**ORDER_BODY["payment"], "card_number": BAD_CARD}}
        bad = place(OrderRequest.model_validate(bad_body), utcnow())
        limits = Limits(Decimal("10000.00"), 100)
        return cls(good.to_bytes(), bad.to_bytes(), decide(good, limits).to_bytes(), decide(bad, limits).to_bytes(),
                   b"0" * 32)

    def _swap(self, template: bytes, i: int, tag: str) -> tuple[bytes, bytes]:
        oid = f"{tag}{i:x}".rjust(32, "0")[-32:].encode()
        return oid, template.replace(self.order_id, oid)

    def orders(self, n: int, tag: str = "b") -> list[tuple[bytes, bytes]]:
        return [self._swap(self.rejected_order if i % REJECT_EVERY == 0 else self.order, i, tag) for i in range(n)]

    def verdicts(self, n: int, tag: str = "v") -> list[tuple[bytes, bytes]]:
        return [self._swap(self.rejected_verdict if i % REJECT_EVERY == 0 else self.verdict, i, tag)
                for i in range(n)]


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
