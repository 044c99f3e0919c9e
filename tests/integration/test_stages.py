"""Each consumer stage against a real broker, run on a thread through the shared loop."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from analytics_backend.aggregate import fold_all
from analytics_backend.main import RunningTotals
from email_backend.mailer import Mailer
from email_backend.main import Confirmations
from orderflow.analytics import merge
from orderflow.events import AnalyticsSnapshot, EmailOutcome, OrderPlaced, OrderRequest, OrderVerdict, utcnow
from orderflow.kafka import AckedWriter, DeadLetter, Stage, dead_letters, fenced, group_lag, read_topic, replay
from orderflow.settings import KafkaSettings
from orderflow.topics import ANALYTICS_RESULT, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT, dlq
from orders_backend.orders import place
from tests.conftest import OpenState
from tests.support import SmtpSink, StageThread, drained, free_port, produce, read_models, wait_until
from transactions_backend.main import Verdicts
from transactions_backend.rules import Limits

pytestmark = pytest.mark.integration


def order(i: int, price: str = "10.00") -> OrderPlaced:
    request = OrderRequest.model_validate({"user_id": f"u{i}", "order_id": f"o{i}",
                                           "user_email": f"u{i}@example.com",
                                           "order_details": {"price": price}})
    return place(request, utcnow())


def transactions_stage(settings: KafkaSettings, open_state: OpenState) -> Stage[OrderPlaced]:
    group = settings.group("transactions")
    return Stage(name="transactions", settings=settings, input_topic=settings.topic(ORDER_DETAILS),
                 model=OrderPlaced, group_id=group,
                 processor=Verdicts(settings, Limits(max_order_total=Decimal("1000")), open_state(settings, group),
                                    group=group))


def confirmations(settings: KafkaSettings, open_state: OpenState, mailer: Mailer,
                  sender: str = "s@example.com") -> Confirmations:
    group = settings.group("email")
    return Confirmations(settings, mailer, AckedWriter(settings), open_state(settings, group), group=group,
                         sender=sender, domain="example.com")


def analytics_stage(settings: KafkaSettings) -> Stage[OrderVerdict]:
    return Stage(name="analytics", settings=settings, input_topic=settings.topic(ORDER_CONFIRMED),
                 model=OrderVerdict, processor=RunningTotals(settings), group_id=settings.group("analytics"))


def verdicts(settings: KafkaSettings) -> list[OrderVerdict]:
    return read_models(settings, settings.topic(ORDER_CONFIRMED), OrderVerdict)


@pytest.mark.parametrize("exactly_once", [True, False], ids=["transactions", "at-least-once"])
def test_transactions_stage_decides_every_order_once_and_dead_letters_poison(
        kafka_settings: KafkaSettings, exactly_once: bool, open_state: OpenState) -> None:
    settings = kafka_settings.model_copy(update={"exactly_once": exactly_once})
    orders = [order(i) for i in range(40)] + [order(99, price="5000.00")]
    poison = [(None, b"not json"), ("p2", b'{"order_id": "x"}'), ("p3", orders[0].to_bytes()[:30])]
    produce(settings, settings.topic(ORDER_DETAILS),
            [(o.order_id, o.to_bytes()) for o in orders] + poison + [("o1", orders[1].to_bytes())])
    with StageThread(transactions_stage(settings, open_state)):
        wait_until(lambda: drained(settings, settings.group("transactions"), settings.topic(ORDER_DETAILS)),
                   60, what="all input committed")
    dead = list(read_topic(settings, settings.topic(dlq(ORDER_DETAILS))))
    out = verdicts(settings)
    assert sorted(v.order_id for v in out) == sorted(o.order_id for o in orders), "one verdict per order"
    rejected = [v for v in out if v.status == "rejected"]
    assert [v.order_id for v in rejected] == ["o99"] and "exceeds the limit" in (rejected[0].reason or "")
    assert len(dead) == 3
    assert {r.value for r in dead} == {value for _, value in poison}
    headers = dict(dead[0].headers)
    assert headers["source_topic"] == settings.topic(ORDER_DETAILS).encode()
    assert headers["error"] and headers["source_offset"].isdigit()


def test_transactions_stage_resumes_after_restart_without_repeats(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS),
            [(o.order_id, o.to_bytes()) for o in (order(i) for i in range(20))])
    with StageThread(transactions_stage(kafka_settings, open_state)):
        wait_until(lambda: len(verdicts(kafka_settings)) >= 20, 60, what="first 20 verdicts")
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS),
            [(o.order_id, o.to_bytes()) for o in (order(i) for i in range(15, 35))])  # 5 repeats
    with StageThread(transactions_stage(kafka_settings, open_state)):
        wait_until(lambda: drained(kafka_settings, kafka_settings.group("transactions"),
                                   kafka_settings.topic(ORDER_DETAILS)), 60, what="all input committed")
    ids = [v.order_id for v in verdicts(kafka_settings)]
    assert sorted(ids) == sorted(f"o{i}" for i in range(35))


def test_analytics_totals_are_exact_and_survive_restart(kafka_settings: KafkaSettings) -> None:
    placed = [order(i, price=f"{i % 7 + 1}.{i % 100:02d}") for i in range(60)]
    vs = [OrderVerdict(order_id=o.order_id, status="rejected" if i % 10 == 0 else "confirmed",
                       reason="test" if i % 10 == 0 else None, order=o) for i, o in enumerate(placed)]
    topic = kafka_settings.topic(ORDER_CONFIRMED)

    def global_totals():  # type: ignore[no-untyped-def]
        latest: dict[str, AnalyticsSnapshot] = {}
        for s in read_models(kafka_settings, kafka_settings.topic(ANALYTICS_RESULT), AnalyticsSnapshot):
            latest[s.scope] = s
        return merge(latest.values())

    produce(kafka_settings, topic, [(v.order_id, v.to_bytes()) for v in vs[:30]])
    with StageThread(analytics_stage(kafka_settings)):
        wait_until(lambda: global_totals().orders_count + global_totals().rejected_count >= 30, 60)
    produce(kafka_settings, topic, [(v.order_id, v.to_bytes()) for v in vs[30:]])
    with StageThread(analytics_stage(kafka_settings)):
        wait_until(lambda: global_totals().orders_count + global_totals().rejected_count >= 60, 60)
    expected = fold_all(merge([]), vs)
    got = global_totals()
    assert got.orders_count == expected.orders_count == 54
    assert got.rejected_count == 6
    assert got.revenue == expected.revenue == sum((o.total for i, o in enumerate(placed) if i % 10), Decimal(0))
    assert got.per_day == expected.per_day


def test_email_stage_sends_one_email_per_confirmed_order(kafka_settings: KafkaSettings,
                                                         smtp_sink: SmtpSink, open_state: OpenState) -> None:
    placed = [order(i) for i in range(12)]
    vs = [OrderVerdict(order_id=o.order_id, status="rejected" if i == 3 else "confirmed", order=o)
          for i, o in enumerate(placed)]
    produce(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED),
            [(v.order_id, v.to_bytes()) for v in vs + vs[:2]])  # two redeliveries
    mailer = Mailer("127.0.0.1", smtp_sink.port, attempts=2, backoff=0.1)
    stage = Stage(name="email", settings=kafka_settings, input_topic=kafka_settings.topic(ORDER_CONFIRMED),
                  model=OrderVerdict,
                  processor=confirmations(kafka_settings, open_state, mailer, sender="shop@example.com"),
                  group_id=kafka_settings.group("email"))
    outcomes_topic = kafka_settings.topic(ORDER_EMAIL_SENT)
    with StageThread(stage):
        wait_until(lambda: drained(kafka_settings, kafka_settings.group("email"),
                                   kafka_settings.topic(ORDER_CONFIRMED)), 60, what="all input committed")
    received = smtp_sink.received()
    assert sorted(m["X-Order-Id"] for m in received) == sorted(v.order_id for v in vs if v.status == "confirmed")
    assert {m["Message-ID"] for m in received} == {f"<order-o{i}@example.com>" for i in range(12) if i != 3}
    outcomes = read_models(kafka_settings, outcomes_topic, EmailOutcome)
    assert len(outcomes) == 11 and all(o.status == "sent" and o.attempts == 1 for o in outcomes)


def test_poison_in_order_confirmed_is_dead_lettered_by_each_stage_that_reads_it(
        kafka_settings: KafkaSettings, smtp_sink: SmtpSink, open_state: OpenState) -> None:
    good = [OrderVerdict(order_id=o.order_id, status="confirmed", order=o) for o in (order(i) for i in range(5))]
    poison = [("bad-1", b"\x00\x01 not json"), ("bad-2", b'{"order_id": "bad-2", "status": "maybe"}')]
    produce(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED),
            poison[:1] + [(v.order_id, v.to_bytes()) for v in good] + poison[1:])
    mailer = Mailer("127.0.0.1", smtp_sink.port, attempts=1)
    email = Stage(name="email", settings=kafka_settings, input_topic=kafka_settings.topic(ORDER_CONFIRMED),
                  model=OrderVerdict, group_id=kafka_settings.group("email"),
                  processor=confirmations(kafka_settings, open_state, mailer))
    with StageThread(email), StageThread(analytics_stage(kafka_settings)):
        for group in ("email", "analytics"):
            wait_until(lambda g=group: drained(kafka_settings, kafka_settings.group(g),  # type: ignore[misc]
                                               kafka_settings.topic(ORDER_CONFIRMED)), 60, what=f"{group} drained")
    dead = list(read_topic(kafka_settings, kafka_settings.topic(dlq(ORDER_CONFIRMED))))
    by_group = Counter(dict(r.headers)["consumer_group"].decode() for r in dead)
    assert by_group == {kafka_settings.group("email"): 2, kafka_settings.group("analytics"): 2}
    assert {r.value for r in dead} == {v for _, v in poison}
    assert sorted(m["X-Order-Id"] for m in smtp_sink.received()) == [v.order_id for v in good]


def test_dead_letters_can_be_listed_and_replayed_once(kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS), [("x1", b"{truncated"), ("o1", order(1).to_bytes())])
    with StageThread(transactions_stage(kafka_settings, open_state)):
        wait_until(lambda: drained(kafka_settings, kafka_settings.group("transactions"),
                                   kafka_settings.topic(ORDER_DETAILS)), 60, what="input committed")
    listed = [DeadLetter.from_record(r) for r in dead_letters(kafka_settings, ORDER_DETAILS)]
    assert len(listed) == 1 and listed[0].key == "x1" and "json_invalid" in listed[0].error
    assert listed[0].source.startswith(kafka_settings.topic(ORDER_DETAILS))
    assert replay(kafka_settings, ORDER_DETAILS) == 1
    assert replay(kafka_settings, ORDER_DETAILS) == 0, "a dead letter is replayed once"
    replayed = [r for r in read_topic(kafka_settings, kafka_settings.topic(ORDER_DETAILS)) if r.key == b"x1"]
    assert len(replayed) == 2 and dict(replayed[1].headers)["replayed_from"] == b"0/0"


def test_lag_reads_zero_once_idle_even_behind_transaction_markers(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    """order_confirmed is written in transactions, whose commit markers take offsets of their own."""
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS),
            [(o.order_id, o.to_bytes()) for o in (order(i) for i in range(30))])
    with StageThread(transactions_stage(kafka_settings, open_state)), StageThread(analytics_stage(kafka_settings)):
        wait_until(lambda: sum(1 for _ in read_topic(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED))) == 30,
                   60, what="30 verdicts")
        seen: list[dict[int, int]] = []

        def idle() -> dict[int, int] | None:
            seen.append(group_lag(kafka_settings, "analytics", ORDER_CONFIRMED))
            return seen[-1] if not any(seen[-1].values()) else None

        try:
            lag = wait_until(idle, 60, what="analytics lag 0")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last lag seen {seen[-1:]}") from exc
    assert set(lag) == {0, 1, 2}


def test_email_stage_waits_out_an_smtp_server_that_is_down(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    """A server that cannot be reached is not the orders' fault: nothing is marked failed."""
    vs = [OrderVerdict(order_id=o.order_id, status="confirmed", order=o) for o in (order(i) for i in range(6))]
    produce(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED), [(v.order_id, v.to_bytes()) for v in vs])
    port = free_port()
    settings = kafka_settings.model_copy(update={"retry_backoff_seconds": 0.2})
    mailer = Mailer("127.0.0.1", port, attempts=2, backoff=0.05, timeout=2)
    stage = Stage(name="email", settings=settings, input_topic=settings.topic(ORDER_CONFIRMED), model=OrderVerdict,
                  processor=confirmations(settings, open_state, mailer),
                  group_id=settings.group("email"))
    sink = SmtpSink(port)
    with StageThread(stage):
        time.sleep(3)  # the stage keeps trying a server that is not there
        assert read_models(settings, settings.topic(ORDER_EMAIL_SENT), EmailOutcome) == []
        sink.start()
        try:
            wait_until(lambda: drained(settings, settings.group("email"), settings.topic(ORDER_CONFIRMED)), 60,
                       what="all emails recorded")
        finally:
            sink.stop()
    assert sorted(m["X-Order-Id"] for m in sink.received()) == sorted(v.order_id for v in vs)
    outcomes = read_models(settings, settings.topic(ORDER_EMAIL_SENT), EmailOutcome)
    assert sorted(o.order_id for o in outcomes) == sorted(v.order_id for v in vs)
    assert all(o.status == "sent" for o in outcomes)


def test_a_restarted_replica_with_the_same_id_takes_over_and_nothing_is_decided_twice(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    """Same replica id twice (a zombie and its restart): the newer one fences the older one."""
    produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS),
            [(o.order_id, o.to_bytes()) for o in (order(i) for i in range(10))])
    old = StageThread(transactions_stage(kafka_settings, open_state))
    old.__enter__()
    wait_until(lambda: drained(kafka_settings, kafka_settings.group("transactions"),
                               kafka_settings.topic(ORDER_DETAILS)), 60, what="first orders decided")
    with StageThread(transactions_stage(kafka_settings, open_state)):
        produce(kafka_settings, kafka_settings.topic(ORDER_DETAILS),
                [(o.order_id, o.to_bytes()) for o in (order(i) for i in range(10, 30))])
        wait_until(lambda: drained(kafka_settings, kafka_settings.group("transactions"),
                                   kafka_settings.topic(ORDER_DETAILS)), 60, what="later orders decided")
    try:
        old.stop()
    except Exception as exc:  # noqa: BLE001 - a fenced zombie may end with its fencing error; that is fine
        assert fenced(exc) or "Fenced" in type(exc).__name__, exc
    assert sorted(v.order_id for v in verdicts(kafka_settings)) == sorted(f"o{i}" for i in range(30))
