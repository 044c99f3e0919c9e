"""The soak's reckoning: what the topics and the SMTP sink hold for the orders answered 2xx."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot
from orderflow.kafka import read_topic
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED


@dataclass
class Outcome:
    """What the topics and the SMTP sink hold for the orders answered 2xx."""

    accepted: int
    unanswered: int  # posted and never answered 2xx before the end
    verdicts_lost: int
    verdicts_doubled: int
    emails_lost: int
    emails_doubled: int
    counted_minus_decided: int

    @property
    def lost(self) -> int:
        return self.verdicts_lost + self.emails_lost + max(0, -self.counted_minus_decided)

    @property
    def doubled(self) -> int:
        return self.verdicts_doubled + self.emails_doubled + max(0, self.counted_minus_decided)


def tally(settings: KafkaSettings, accepted: set[str], emails_file: Path) -> tuple[Counter[str], set[str], Counter[str],
                                                                                  int]:
    """(verdicts per order, confirmed orders, emails per order, orders counted by analytics)."""
    verdicts: Counter[str] = Counter()
    confirmed = set()
    for r in read_topic(settings, settings.topic(ORDER_CONFIRMED), timeout=60):
        if r.value is not None:
            verdict = json.loads(r.value)
            verdicts[verdict["order_id"]] += 1
            if verdict["status"] == "confirmed":
                confirmed.add(verdict["order_id"])
    emails = Counter(emails_file.read_text().split()) if emails_file.exists() else Counter()
    latest = {r.key: r.value for r in read_topic(settings, settings.topic(ANALYTICS_RESULT), timeout=60)}
    totals = merge(AnalyticsSnapshot.model_validate_json(v) for v in latest.values() if v is not None)
    return verdicts, confirmed & accepted, emails, int(totals.orders_count + totals.rejected_count)


def settle(settings: KafkaSettings, accepted: set[str], emails_file: Path, timeout: float) -> Outcome:
    """Wait (up to ``timeout``) until every accepted order is decided, emailed and counted; then compare."""
    deadline = time.monotonic() + timeout
    while True:
        verdicts, confirmed, emails, counted = tally(settings, accepted, emails_file)
        done = (accepted <= set(verdicts) and confirmed <= set(emails) and counted >= len(verdicts))
        if done or time.monotonic() > deadline:
            break
        time.sleep(2)
    time.sleep(3)  # anything doubled shows up now
    verdicts, confirmed, emails, counted = tally(settings, accepted, emails_file)
    return Outcome(
        accepted=len(accepted), unanswered=0,
        verdicts_lost=len(accepted - set(verdicts)),
        verdicts_doubled=sum(n - 1 for n in verdicts.values()),
        emails_lost=len(confirmed - set(emails)),
        emails_doubled=sum(n - 1 for order_id, n in emails.items() if order_id in confirmed),
        counted_minus_decided=counted - len(verdicts),
    )
