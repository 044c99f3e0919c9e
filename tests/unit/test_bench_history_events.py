"""The bench's synthetic history is made of records the pipeline accepts, with the verdicts it would give."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.history_events import SPAN, History
from orderflow.events import EmailOutcome, EmailSent, OrderPlaced
from transactions_backend.rules import decide

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_every_order_parses_under_its_key_with_its_own_ids_and_times() -> None:
    history = History(300, END)
    orders = [(key, OrderPlaced.model_validate_json(value)) for key, value in history.orders()]
    assert [key.decode() for key, _ in orders] == [history.order_id(i) for i in range(300)]
    assert all(order.order_id == key.decode() for key, order in orders)
    assert len({order.event_id for _, order in orders}) == 300
    times = [order.time for _, order in orders]
    assert times == sorted(times) and END - SPAN <= times[0] and times[-1] < END
    assert all(order.occurred_at == order.time for _, order in orders)
    assert len({order.user_id for _, order in orders}) == 30  # about ten orders per customer
    assert all(order.user_email == f"customer-{order.user_id[2:]}@example.com" for _, order in orders)


def test_the_rules_reject_exactly_the_orders_the_history_counts_as_rejected() -> None:
    history = History(100, END)
    verdicts = {key.decode(): decide(OrderPlaced.model_validate_json(value)).status for key, value in history.orders()}
    rejected = {history.order_id(i) for i in range(100) if history.rejected(i)}
    assert {oid for oid, status in verdicts.items() if status == "rejected"} == rejected
    assert len(verdicts) - len(rejected) == history.confirmed


def test_outcomes_and_notes_only_for_confirmed_orders_and_they_parse() -> None:
    history = History(100, END)
    confirmed = {history.order_id(i) for i in range(100) if not history.rejected(i)}
    outcomes = [(key.decode(), EmailOutcome.model_validate_json(value)) for key, value in history.outcomes()]
    notes = [(key.decode(), EmailSent.model_validate_json(value)) for key, value in history.notes()]
    assert {key for key, _ in outcomes} == confirmed == {key for key, _ in notes}
    assert len(outcomes) == len(notes) == history.confirmed
    for key, outcome in outcomes:
        assert outcome.order_id == key and outcome.status == "sent" and outcome.message_id == f"<{key}@shop.example>"
        assert outcome.order_details is not None and outcome.order_details.items
    assert len({outcome.event_id for _, outcome in outcomes} | {note.event_id for _, note in notes}) == 2 * len(notes)
