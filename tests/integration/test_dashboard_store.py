"""The dashboard over a real order store, SQLite and PostgreSQL alike (no Kafka: the store is written here
as the projector writes it): exact counts however long the history, a start that reads a bounded number
of rows, any order found, search, paging while orders arrive, a store that is not there yet, or rebuilt."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Select, delete
from sqlalchemy.exc import DBAPIError

from dashboard import create_app
from dashboard.settings import Settings
from dashboard.store_feed import StoreFeed
from dashboard.view import DashboardState
from orderflow.settings import KafkaSettings
from orderflow.store import OrderRow, OrderStore, StoreSettings, sqlite_file
from orderflow.store.schema import counters
from tests.storefill import Event, StoreFiller
from tests.support import operator_client, wait_until
from tests.unit.test_dashboard_view import T0, email, placed, verdict

pytestmark = pytest.mark.integration

WAIT = 30.0


class CountingStore(OrderStore):
    """The store as the dashboard opens it, counting every order row the database hands back."""

    rows_read = 0

    def _rows(self, query: Select[Any]) -> list[OrderRow]:
        found = super()._rows(query)
        self.rows_read += len(found)
        return found


def history(count: int, first: int = 0, prefix: str = "o") -> list[Event]:
    """``count`` orders a second apart from ``T0``: every fourth rejected, the others confirmed and emailed
    (every fifth email failed); users u-0..u-6 with their own address."""
    events: list[Event] = []
    for i in range(first, first + count):
        order = placed(f"{prefix}-{i:05d}", user_id=f"u-{i % 7}").model_copy(
            update={"time": T0 + timedelta(seconds=i), "user_email": f"user{i % 7}@example.com"})
        events.append(order)
        if i % 4 == 0:
            events.append(verdict(order, "rejected", "over the limit"))
        else:
            events += [verdict(order), email(order, "failed" if i % 5 == 0 else "sent")]
    return events


def expected_counts(count: int, first: int = 0) -> dict[str, int]:
    numbers = range(first, first + count)
    confirmed = [i for i in numbers if i % 4]
    return {"received": count, "confirmed": len(confirmed), "rejected": count - len(confirmed),
            "emails_sent": sum(1 for i in confirmed if i % 5), "emails_failed": sum(1 for i in confirmed if i % 5 == 0)}


def write(filler: StoreFiller, events: list[Event], batch: int = 500) -> None:
    for start in range(0, len(events), batch):
        filler.write(*events[start:start + batch])


@pytest.fixture
def filler(store_url: str) -> Iterator[StoreFiller]:
    with StoreFiller(store_url) as filler:
        yield filler


@pytest.fixture
def reader(store_url: str) -> Iterator[CountingStore]:
    store = CountingStore.open(StoreSettings(database_url=store_url), read_only=True)
    yield store  # type: ignore[misc]  # open() makes the subclass it is called on
    store.close()


@pytest.fixture
def dashboard(store_url: str) -> Iterator[Callable[..., FlaskClient]]:
    """``dashboard(**settings)``: the app over the test's store with its store reader started (no Kafka here:
    its Kafka reader stays off); stopped at the end."""
    apps: list[Any] = []

    def make(read: bool = True, **overrides: Any) -> FlaskClient:
        settings = Settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"), store=StoreSettings(
            database_url=store_url), **{"lag_seconds": 0, "feed_mode": "off", "store_poll_ms": 50, **overrides})
        apps.append(create_app(settings))
        if read:
            apps[-1].feed.orders.start()
        return operator_client(apps[-1])

    yield make
    for app in apps:
        app.feed.stop()
        app.store.close()


def test_counts_are_exact_over_a_history_far_past_max_orders_and_start_reads_a_bounded_number_of_rows(
        filler: StoreFiller, reader: CountingStore) -> None:
    max_orders, first = 20, 1_500
    write(filler, history(first))
    state = DashboardState(max_orders=max_orders)
    feed = StoreFeed(reader, state, threading.Lock())
    feed.turn()  # the start: one load
    assert state.counts == expected_counts(first)
    assert reader.rows_read == feed.rows_read == max_orders  # the newest rows, not the history
    assert [o.order_id for o in state.orders()] == [f"o-{i:05d}" for i in range(first - 1, first - 21, -1)]

    write(filler, history(5, first=first))  # five more orders, three events each at most
    reader.rows_read = 0
    feed.turn()  # follows: only the rows that changed
    assert state.counts == expected_counts(first + 5)
    assert reader.rows_read == 5 and state.orders()[0].order_id == f"o-{first + 4:05d}"
    feed.turn()  # nothing new: not a row read
    assert reader.rows_read == 5

    write(filler, history(2_500, first=first + 5))  # a longer history: a new start reads just as much
    again = StoreFeed(reader, DashboardState(max_orders=max_orders), threading.Lock())
    reader.rows_read = 0
    again.turn()
    assert again.state.counts == expected_counts(first + 2_505) and reader.rows_read == max_orders
    reader.rows_read = 0
    feed.turn()  # 2,500 changes behind: reading the newest again costs less than replaying them
    assert reader.rows_read == max_orders and state.counts == again.state.counts
    assert [o.order_id for o in state.orders()] == [o.order_id for o in again.state.orders()]


def test_max_orders_past_one_read_is_loaded_a_page_at_a_time(filler: StoreFiller, reader: CountingStore) -> None:
    write(filler, history(1_300))
    state = DashboardState(max_orders=1_200)
    StoreFeed(reader, state, threading.Lock()).turn()
    assert len(state) == 1_200 and reader.rows_read == 1_200
    assert state.orders()[-1].order_id == "o-00100" and state.counts["received"] == 1_300


def test_the_held_newest_and_an_old_order_are_both_found(filler: StoreFiller,
                                                          dashboard: Callable[..., FlaskClient]) -> None:
    write(filler, history(40))
    client = dashboard(max_orders=5)
    state = wait_until(lambda: (s := client.get("/api/state").json)["store"]["ready"] and s, WAIT, 0.05, "a load")
    assert state["order_ids"] == [f"o-{i:05d}" for i in range(39, 34, -1)]
    assert state["counts"] == expected_counts(40) and state["store"]["connected"] is True
    for order_id, stage in (("o-00039", "emailed"), ("o-00000", "rejected"), ("o-00005", "email_failed")):
        page = client.get(f"/orders/{order_id}")
        assert page.status_code == 200 and f'data-step="{stage}"' in page.text, order_id
        assert client.get(f"/api/orders/{order_id}").json["stage"] == stage
    assert client.get("/orders/o-99999").status_code == 404


@pytest.mark.parametrize(("term", "matches"), [("o-00012", ["o-00012"]), ("u-3", ["o-00031", "o-00024", "o-00017"]),
                                               ("user3@example.com", ["o-00031", "o-00024", "o-00017"])])
def test_search_by_order_id_customer_id_or_email(filler: StoreFiller, dashboard: Callable[..., FlaskClient],
                                                 term: str, matches: list[str]) -> None:
    write(filler, history(35))
    client = dashboard(read=False)
    found = client.get("/api/search", query_string={"q": term, "limit": 3}).json
    assert [o["order_id"] for o in found["orders"]] == matches
    page = client.get("/history", query_string={"q": term})
    assert page.status_code == 200 and page.text.count("<tr data-order-id=") == (1 if term.startswith("o-") else 5)


def pages(client: FlaskClient, before: str | None, limit: int) -> tuple[list[str], str | None]:
    body = client.get("/api/history", query_string={"limit": limit, **({"before": before} if before else {})}).json
    return [o["order_id"] for o in body["orders"]], body["next"]


def test_paging_keeps_its_place_while_orders_arrive(filler: StoreFiller, dashboard: Callable[..., FlaskClient]) -> None:
    write(filler, history(100))
    client = dashboard(read=False)
    first, cursor = pages(client, None, 30)
    assert first == [f"o-{i:05d}" for i in range(99, 69, -1)] and cursor is not None
    # Meanwhile: newer orders; two at the very time of the cursor's row, one ranked before it by its id and one
    # after; and a late order placed long ago (an order's time is the API's; its arrival in the store may lag).
    at_cursor = [placed(order_id).model_copy(update={"time": T0 + timedelta(seconds=70)})
                 for order_id in ("o-00070a", "o-00069z")]
    late = placed("late-1").model_copy(update={"time": T0 + timedelta(seconds=10, milliseconds=500)})
    write(filler, [*history(20, first=100), *at_cursor, late])
    seen: list[str] = []
    while cursor is not None:
        more, cursor = pages(client, cursor, 30)
        seen += more
    older = [f"o-{i:05d}" for i in range(69, -1, -1)]
    assert seen == ["o-00069z", *older[:59], "late-1", *older[59:]]  # each older order once, in order
    assert not set(seen) & {*first, "o-00070a"}  # nothing of the first page, nothing newer than its end
    assert len(seen) == len(set(seen))


def test_a_store_that_is_not_there_yet_is_503_until_it_is(store_url: str,
                                                          dashboard: Callable[..., FlaskClient]) -> None:
    """The dashboard may start before the projector made the store (SQLite: no file; PostgreSQL: no tables)."""
    client = dashboard()
    feed = client.application.feed  # type: ignore[attr-defined]
    wait_until(lambda: feed.orders.last_error, WAIT, 0.05, "a failed read")
    state = client.get("/api/state").json
    assert state["store"]["connected"] is False and state["store"]["ready"] is False
    assert client.get("/orders/o-00001").status_code == 503 and client.get("/api/history").status_code == 503
    path = sqlite_file(store_url)
    assert path is None or not path.exists()  # read-only: no database made in its place

    with StoreFiller(store_url) as filler:  # the projector starts
        write(filler, history(3))
    state = wait_until(lambda: (s := client.get("/api/state").json)["counts"]["received"] == 3 and s, WAIT, 0.05,
                       "recovery")  # the schema may be read before the rows are: then they follow
    assert state["counts"] == expected_counts(3) and state["order_ids"] == ["o-00002", "o-00001", "o-00000"]
    assert state["store"]["error"] is None
    assert client.get("/orders/o-00001").status_code == 200


def test_the_dashboard_cannot_write_to_the_store(filler: StoreFiller, reader: CountingStore) -> None:
    write(filler, history(1))
    with pytest.raises(DBAPIError, match="read-only|readonly"), reader.engine.begin() as conn:
        conn.execute(delete(counters))
    assert reader.counts()["received"] == 1


def test_a_store_rebuilt_under_the_dashboard_is_read_again(tmp_path: Path) -> None:
    """Deleting the SQLite file is how an operator rebuilds the store: its change numbers start again."""
    url = f"sqlite:///{tmp_path / 'store' / 'orders.sqlite3'}"
    with StoreFiller(url) as filler:
        write(filler, history(30))
    reader = CountingStore.open(StoreSettings(database_url=url), read_only=True)
    state = DashboardState(max_orders=10)
    feed = StoreFeed(reader, state, threading.Lock())
    feed.turn()
    assert state.counts["received"] == 30 and feed.loads == 1
    shutil.rmtree(tmp_path / "store")
    with StoreFiller(url) as filler:  # rebuilt, and not yet as far as before
        write(filler, history(4, prefix="n"))
    feed.turn()
    assert feed.loads == 2 and state.counts == expected_counts(4)
    assert [o.order_id for o in state.orders()] == ["n-00003", "n-00002", "n-00001", "n-00000"]
    reader.close()
