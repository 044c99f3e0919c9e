"""The consumers' state files on a real broker: a restart reads back only what follows the checkpoint,
kill -9 right after a Kafka commit loses and doubles nothing, a lost file is rebuilt, and a replica
with an old file catches up what another one did.

How much a restart read back is what the service logs in its "caught up" lines (records counted,
not time measured).
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from orderflow.events import EmailOutcome, OrderPlaced, OrderRequest, OrderVerdict, utcnow
from orderflow.kafka import KafkaError, Stage, ensure_topics, make_admin
from orderflow.settings import KafkaSettings
from orderflow.statestore import state_file
from orderflow.topics import EMAIL_GROUP, ORDER_CONFIRMED, ORDER_DETAILS, ORDER_EMAIL_SENT, TRANSACTIONS_GROUP
from orders_backend.orders import place
from tests.conftest import OpenState
from tests.integration.test_resilience import Feeder, Pipeline, assert_exactly_once, make_orders
from tests.support import ServiceProcess, SmtpSink, StageThread, drained, produce, read_models, service_env, wait_until
from transactions_backend.main import Verdicts
from transactions_backend.rules import Limits

pytestmark = pytest.mark.integration
BATCH = 20  # KAFKA_MAX_BATCH here: what a crash right after a commit may leave for the restart to read


def placed(order_id: str) -> OrderPlaced:
    request = OrderRequest.model_validate({"user_id": "u", "order_id": order_id, "user_email": "u@example.com",
                                           "order_details": {"price": "10.00"}})
    return place(request, utcnow())


def catch_ups(log: str) -> dict[str, int]:
    """Records read back per topic, from the "caught up" lines of a service's JSON log."""
    read: Counter[str] = Counter()
    for line in log.splitlines():
        if '"caught up ' in line:
            entry = json.loads(line)
            read[entry["topic"]] += int(entry["records"])
    return dict(read)


def start(service: ServiceProcess, crash_after: int | None = None) -> int:
    """Start ``service``, or with ``crash_after`` its variant killed right after that many commits;
    the length of its log before, where this run's lines begin."""
    service.module = "tests.crash_after_commit" if crash_after else service.name
    service.env.update(CRASH_SERVICE=service.name, CRASH_AFTER_COMMITS=str(crash_after or 0))
    mark = len(service.log())
    service.start()
    return mark


def restored(service: ServiceProcess, mark: int) -> None:
    """Wait for the run that began at ``mark`` to have caught up and taken its partitions."""
    wait_until(lambda: "owns partitions" in service.log()[mark:], 60, what=f"{service.name} restored")


def crashed(service: ServiceProcess) -> None:
    wait_until(lambda: not service.alive(), 120, what=f"{service.name} killed right after a commit")
    assert service.process is not None and service.process.returncode == -signal.SIGKILL, service.log()[-3000:]


def test_transactions_backend_reads_back_one_batch_at_most_however_long_its_history(
        kafka_settings: KafkaSettings, logs_dir: Path) -> None:
    settings = kafka_settings.model_copy(update={"max_batch": BATCH})
    service = ServiceProcess("transactions_backend", service_env(settings), logs_dir)
    group, topic = settings.group(TRANSACTIONS_GROUP), settings.topic(ORDER_DETAILS)
    decided: list[str] = []
    read_back = {}
    try:
        for history in (100, 800):
            new = [f"h{len(decided) + i}" for i in range(history)]
            repeats = decided[:40]  # decided before this round: only the state file knows
            produce(settings, topic, [(i, placed(i).to_bytes()) for i in new + repeats])
            decided += new
            crashing = start(service, crash_after=3)
            crashed(service)
            mark = start(service)
            restored(service, mark)
            wait_until(lambda: drained(settings, group, topic), 120, what="every order decided")
            read_back[history] = catch_ups(service.log()[mark:]).get(topic, 0)
            if history > 100:  # the state file of the first round is there: nothing starts over
                assert "from the beginning" not in service.log()[crashing:]
            service.kill()  # and a kill -9 when idle, before the next round
    finally:
        service.stop()
    # The batch killed between Kafka's commit and the file's, and nothing before it.
    assert all(1 <= n <= BATCH for n in read_back.values()), read_back
    ids = [v.order_id for v in read_models(settings, settings.topic(ORDER_CONFIRMED), OrderVerdict)]
    assert sorted(ids) == sorted(decided), "each order decided once"


def test_email_backend_reads_back_one_batch_at_most_and_emails_each_order_once(
        kafka_settings: KafkaSettings, smtp_sink: SmtpSink, logs_dir: Path) -> None:
    settings = kafka_settings.model_copy(update={"max_batch": BATCH})
    env = service_env(settings, EMAIL_SMTP_PORT=str(smtp_sink.port), EMAIL_BACKOFF_SECONDS="0.1")
    service = ServiceProcess("email_backend", env, logs_dir)
    group, topic, notes = settings.group(EMAIL_GROUP), settings.topic(ORDER_CONFIRMED), settings.topic("email_sent_log")
    verdicts: list[OrderVerdict] = []
    read_back = {}
    try:
        for history in (60, 400):
            new = [OrderVerdict(order_id=o.order_id, status="rejected" if i % 10 == 3 else "confirmed", order=o)
                   for i, o in enumerate(placed(f"e{len(verdicts) + i}") for i in range(history))]
            produce(settings, topic, [(v.order_id, v.to_bytes()) for v in new + verdicts[:30]])  # and redeliveries
            verdicts += new
            start(service, crash_after=3)
            crashed(service)
            mark = start(service)
            restored(service, mark)
            wait_until(lambda: drained(settings, group, topic), 120, what="every verdict read")
            read_back[history] = catch_ups(service.log()[mark:])
            service.kill()
    finally:
        service.stop()
    assert all(1 <= n.get(topic, 0) <= BATCH and n.get(notes, 0) <= BATCH for n in read_back.values()), read_back
    confirmed = sorted(v.order_id for v in verdicts if v.status == "confirmed")
    emails = Counter(m["X-Order-Id"] for m in smtp_sink.received())
    assert sorted(emails) == confirmed and set(emails.values()) == {1}, "each confirmed order emailed once"
    outcomes = read_models(settings, settings.topic(ORDER_EMAIL_SENT), EmailOutcome)
    assert sorted(o.order_id for o in outcomes) == confirmed


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_a_lost_state_file_is_rebuilt_from_the_topic_and_no_order_is_decided_twice(
        kafka_settings: KafkaSettings, logs_dir: Path, damage: str) -> None:
    service = ServiceProcess("transactions_backend", service_env(kafka_settings), logs_dir)
    group, topic = kafka_settings.group(TRANSACTIONS_GROUP), kafka_settings.topic(ORDER_DETAILS)
    first = [f"o{i}" for i in range(300)]
    produce(kafka_settings, topic, [(i, placed(i).to_bytes()) for i in first])
    path = state_file(logs_dir / "state", group, kafka_settings.replica_id)
    mark = 0
    try:
        restored(service, start(service))
        wait_until(lambda: drained(kafka_settings, group, topic), 120, what="the first orders decided")
        service.kill()
        assert path.exists()
        for extra in ("-wal", "-shm"):
            path.with_name(path.name + extra).unlink(missing_ok=True)
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"\x00 not what it was " * 64)
        later = [f"n{i}" for i in range(20)]
        produce(kafka_settings, topic, [(i, placed(i).to_bytes()) for i in first[::6] + later])
        mark = start(service)
        restored(service, mark)
        wait_until(lambda: drained(kafka_settings, group, topic), 120, what="the later orders decided")
    finally:
        service.stop()
    log = service.log()[mark:]
    assert "reading it from the beginning" in log
    assert catch_ups(log).get(topic) == len(first), "rebuilt from every record committed before"
    assert path.with_name(path.name + ".unreadable").exists() == (damage == "unreadable")
    ids = [v.order_id for v in read_models(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED), OrderVerdict)]
    assert sorted(ids) == sorted(first + later), "each order decided once"


def test_a_replica_with_an_old_state_file_catches_up_what_another_replica_decided(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    """Replicas a, b, a again: each has its own file. A static member keeps its partitions for a
    session after it stops, hence the short session."""
    settings = kafka_settings.model_copy(update={"session_timeout_ms": 6000})
    group, topic = settings.group(TRANSACTIONS_GROUP), settings.topic(ORDER_DETAILS)

    def replica(name: str) -> tuple[Verdicts, Stage[OrderPlaced]]:
        own = settings.model_copy(update={"replica_id": name})
        verdicts = Verdicts(own, Limits(Decimal("1000"), 100), open_state(own, group), group=group)
        return verdicts, Stage(name=f"transactions-{name}", settings=own, input_topic=topic, model=OrderPlaced,
                               processor=verdicts, group_id=group)

    rounds = [[f"a{i}" for i in range(50)], [f"b{i}" for i in range(50)], [f"c{i}" for i in range(20)]]
    repeats = [[], rounds[0][:10], rounds[1][:10] + rounds[0][10:15]]
    caught_up = []
    for name, new, again in zip(("a", "b", "a"), rounds, repeats, strict=True):
        produce(settings, topic, [(i, placed(i).to_bytes()) for i in new + again])
        verdicts, stage = replica(name)
        with StageThread(stage):
            wait_until(lambda: drained(settings, group, topic), 90, what=f"replica {name} done")
        caught_up.append(verdicts.caught_up)
    # b had no file: it read everything a had committed; a came back to read only what b did.
    assert caught_up == [0, 50, 50 + 10]
    ids = [v.order_id for v in read_models(settings, settings.topic(ORDER_CONFIRMED), OrderVerdict)]
    assert sorted(ids) == sorted(rounds[0] + rounds[1] + rounds[2]), "each order decided once"


def test_a_state_file_left_from_a_deleted_topic_is_emptied_not_trusted(
        kafka_settings: KafkaSettings, open_state: OpenState) -> None:
    """A wiped broker, or topics deleted and made again: the same names, the same order ids, a new history."""
    group, topic = kafka_settings.group(TRANSACTIONS_GROUP), kafka_settings.topic(ORDER_DETAILS)
    gone = [topic, kafka_settings.topic(ORDER_CONFIRMED)]

    def stage() -> Stage[OrderPlaced]:
        state = open_state(kafka_settings, group)
        verdicts = Verdicts(kafka_settings, Limits(Decimal("1000"), 100), state, group=group)
        return Stage(name="transactions", settings=kafka_settings, input_topic=topic, model=OrderPlaced,
                     processor=verdicts, group_id=group)

    ids = [f"o{i}" for i in range(10)]
    produce(kafka_settings, topic, [(i, placed(i).to_bytes()) for i in ids])
    with StageThread(stage()):
        wait_until(lambda: drained(kafka_settings, group, topic), 60, what="the first history decided")
    admin = make_admin(kafka_settings)
    try:
        admin.delete_topics(gone)
        wait_until(lambda: not set(gone) & set(admin.list_topics()), 60, what="topics deleted")
    finally:
        admin.close()
    wait_until(lambda: remade(kafka_settings, gone), 60, what="topics made again")
    produce(kafka_settings, topic, [(i, placed(i).to_bytes()) for i in ids[:5]])
    with StageThread(stage()):
        wait_until(lambda: drained(kafka_settings, group, topic), 60, what="the new history decided")
    again = [v.order_id for v in read_models(kafka_settings, kafka_settings.topic(ORDER_CONFIRMED), OrderVerdict)]
    assert sorted(again) == ids[:5], "decided in the new topic, whatever the old file said"


def remade(settings: KafkaSettings, names: list[str]) -> bool:
    """Whether ``ensure_topics`` could make the topics again (a deletion takes a while to finish)."""
    try:
        ensure_topics(settings, timeout=5)
    except (KafkaError, RuntimeError):
        return False
    admin = make_admin(settings)
    try:
        return set(names) <= set(admin.list_topics())
    finally:
        admin.close()


def test_kill_9_right_after_commits_mid_stream_decides_and_emails_each_order_once(
        kafka_settings: KafkaSettings, smtp_sink: SmtpSink, logs_dir: Path) -> None:
    settings = kafka_settings.model_copy(update={"max_batch": 50})
    orders = make_orders(1500)
    feeder = Feeder(settings, orders, per_second=300)
    pipeline = Pipeline(settings, smtp_sink, logs_dir)
    crashes = {"transactions_backend": [4, 9], "email_backend": [4, 9]}
    for name, after in crashes.items():
        service = pipeline.services[name]
        service.module, service.env["CRASH_SERVICE"] = "tests.crash_after_commit", name
        service.env["CRASH_AFTER_COMMITS"] = str(after[0])
    with pipeline:
        feeder.start()
        for name, after in crashes.items():
            for then in [*after[1:], None]:
                crashed(pipeline.services[name])
                start(pipeline.services[name], crash_after=then)
        feeder.join(60)
        assert feeder.error is None and not feeder.is_alive()
        # Killed after the commit, no email was in flight: not one may go twice.
        assert_exactly_once(pipeline, orders, smtp_sink, email_crashes=0)
