"""The dashboard and the shop page in a real browser (Debian's Chromium through Playwright) over the whole stack.

Processes as in production: the orders API under gunicorn (CORS open to the dashboard's origin), the three
consumer services, the order store's projector, the dashboard (``python -m dashboard``, reading that store), a
real broker and a real SMTP server. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from devtools.devstack import answers
from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from tests.support import (
    OPERATOR_PASSWORD,
    ROOT,
    ServiceProcess,
    SmtpSink,
    free_port,
    operator_env,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
SLOW = 90_000  # ms: an order's whole trip through the pipeline, on a busy 2-core machine
EVIL = "<script>alert(1)</script>"
RATE_LIMIT = 40  # orders per minute from one address: more than the tests before the last one post
# Every Content-Security-Policy violation a page reports, kept where the test can read it.
CSP_WATCH = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


@dataclass
class Stack:
    api: str
    dashboard: str
    kafka: KafkaSettings


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:10]}.",
                          partitions=3, replica_id=uuid.uuid4().hex[:8])
    ensure_topics(kafka)
    smtp = SmtpSink(port=free_port())
    smtp.start()
    api, dashboard = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = service_env(kafka, ORDERS_HOST="127.0.0.1", ORDERS_PORT=api.rsplit(":", 1)[1], ORDERS_WORKERS="1",
                      ORDERS_CORS_ORIGINS=dashboard, ORDERS_RATE_LIMIT=f"{RATE_LIMIT}/minute",
                      EMAIL_SMTP_PORT=str(smtp.port), EMAIL_BACKOFF_SECONDS="0.1",
                      DASHBOARD_HOST="127.0.0.1", DASHBOARD_PORT=dashboard.rsplit(":", 1)[1],
                      DASHBOARD_ORDERS_API_URL=api, DASHBOARD_LAG_SECONDS="1", PROJECTOR_METRICS_PORT="0",
                      STORE_DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('store') / 'orders.sqlite3'}",
                      **operator_env())
    logs = tmp_path_factory.mktemp("logs")
    services = [ServiceProcess(m, env, logs).start()
                for m in ("orders_backend", "transactions_backend", "email_backend", "analytics_backend",
                          "order_projector", "dashboard")]
    try:
        wait_until(lambda: answers(f"{api}/healthz") and answers(f"{dashboard}/healthz"), 90, what="the services")
        yield Stack(api, dashboard, kafka)
    finally:
        codes = {s.name: s.stop() for s in services}
        logs_tail = {s.name: s.log()[-2000:] for s in services}
        smtp.stop()
    assert all(code == 0 for code in codes.values()), (codes, logs_tail)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: run scripts/ensure-chromium.sh")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_factory(browser: Browser) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A browser context and the messages of every dialog (alert, confirm) any of its pages opened."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    context.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    context.add_init_script(CSP_WATCH)
    console: list[str] = []
    context.on("console", lambda message: console.append(message.text))
    pages: list[Page] = []
    context.on("page", lambda page: pages.append(page))
    yield context, dialogs
    violations = [v for page in pages if not page.is_closed() for v in page.evaluate("window.cspViolations || []")]
    violations += [text for text in console if "Content Security Policy" in text]
    context.close()
    assert violations == [], "no page may break its Content-Security-Policy"


def log_in(context: BrowserContext, dashboard: str) -> None:
    """The operator logs in through the dashboard's form; the context keeps the session."""
    page = context.new_page()
    page.goto(f"{dashboard}/")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.get_by_test_id("login-operator").fill("operator")
    page.get_by_test_id("login-password").fill(OPERATOR_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()
    page.close()


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_an_order_from_the_shop_shows_up_live_on_the_dashboard(stack: Stack,
                                                                page_factory: tuple[BrowserContext, list[str]]) -> None:
    context, dialogs = page_factory
    log_in(context, stack.dashboard)
    dash = context.new_page()
    dash.goto(f"{stack.dashboard}/")
    expect(dash.get_by_test_id("feed-status")).to_have_text("live", timeout=SLOW)  # streaming, Kafka connected
    revenue = dash.get_by_test_id("tile-revenue-value")
    expect(revenue).not_to_have_text("–")
    before = money(revenue.inner_text())
    received = dash.get_by_test_id("tile-received-value")
    expect(received).not_to_have_text("–")  # the order store's count, read
    received_before = int(received.inner_text())
    dash.evaluate("window.notReloaded = true")

    shop = context.new_page()
    shop.goto(f"{stack.dashboard}/shop")
    shop.get_by_test_id("qty-oak-chair").fill("2")
    shop.get_by_test_id("qty-reading-lamp").fill("1")
    expect(shop.get_by_test_id("basket-total")).to_have_text("219.30")
    shop.get_by_test_id("user_id").fill("u-browser")
    shop.get_by_test_id("user_email").fill("not-an-email")
    shop.get_by_test_id("place-order").click()
    error = shop.get_by_test_id("error-user_email")
    expect(error).to_be_visible(timeout=15_000)
    expect(error).to_contain_text("email address")  # the API's 422 message, next to its field
    expect(shop.get_by_test_id("user_email")).to_have_attribute("aria-invalid", "true")
    expect(shop.get_by_test_id("result")).to_be_hidden()
    shoot(shop, "shop-validation-error.png")

    shop.get_by_test_id("user_email").fill("ada@example.com")
    shop.get_by_test_id("place-order").click()
    result = shop.get_by_test_id("result")
    expect(result).to_be_visible(timeout=15_000)
    expect(error).to_be_hidden()
    order_id = shop.get_by_test_id("result-id").inner_text()
    assert order_id and result.get_attribute("data-total") == "219.30"
    shoot(shop, "shop-order-placed.png")

    dash.bring_to_front()
    row = dash.locator(f'#orders-body tr[data-order-id="{order_id}"]')
    expect(row.locator('[data-step="received"]')).to_be_visible(timeout=SLOW)
    expect(row.locator('[data-step="confirmed"]')).to_be_visible(timeout=SLOW)
    expect(row.locator('[data-step="emailed"]')).to_be_visible(timeout=SLOW)
    expect(row.locator('td[data-field="items"]')).to_have_text("Oak chair × 2, Reading lamp")
    expect(revenue).to_have_text(f"{before + Decimal('219.30'):,.2f}", timeout=SLOW)
    expect(received).to_have_text(str(received_before + 1))
    assert dash.evaluate("window.notReloaded") is True  # all of it without a reload
    assert dash.evaluate("window.orderflowDashboard.mode") == "stream"
    expect(dash.locator('#lag-body tr[data-service="email_backend"]')).to_be_visible(timeout=SLOW)
    shoot(dash, "dashboard.png")

    dash.goto(f"{stack.dashboard}/orders/{order_id}")
    expect(dash.get_by_test_id("order-stage")).to_have_text("emailed")
    expect(dash.locator('#order-timeline [data-step="emailed"]')).to_be_visible()
    shoot(dash, "order.png")

    dash.goto(f"{stack.dashboard}/")  # the customer's orders, found from the dashboard's search
    dash.get_by_test_id("search-input").fill("u-browser")
    dash.get_by_test_id("search-submit").click()
    expect(dash.get_by_test_id("search-query")).to_have_text("u-browser")
    found = dash.locator(f'[data-testid="history"] tr[data-order-id="{order_id}"]')
    expect(found.locator('[data-step="emailed"]')).to_be_visible()
    expect(found.locator("td.items")).to_have_text("Oak chair × 2, Reading lamp")
    shoot(dash, "search.png")
    dash.get_by_role("link", name="Orders", exact=True).click()  # the history, from the navigation
    expect(dash.locator(f'[data-testid="history"] tr[data-order-id="{order_id}"]')).to_be_visible()
    shoot(dash, "history.png")
    assert dialogs == []


def post_order(api: str, body: dict) -> None:  # type: ignore[type-arg]
    request = urllib.request.Request(f"{api}/order", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 201


def test_without_event_source_the_page_polls(stack: Stack, page_factory: tuple[BrowserContext, list[str]]) -> None:
    context, _ = page_factory
    log_in(context, stack.dashboard)
    context.add_init_script("delete window.EventSource")  # an old browser, or a proxy that breaks streams
    page = context.new_page()
    page.goto(f"{stack.dashboard}/")
    expect(page.get_by_test_id("feed-status")).to_have_text("live (polling)", timeout=SLOW)
    order_id = f"poll-{uuid.uuid4().hex[:8]}"
    post_order(stack.api, {"user_id": "u-poll", "order_id": order_id, "user_email": "poll@example.com",
                           "order_details": {"price": "12.00"}})
    row = page.locator(f'#orders-body tr[data-order-id="{order_id}"]')
    expect(row.locator('[data-step="emailed"]')).to_be_visible(timeout=SLOW)
    assert page.evaluate("window.orderflowDashboard.mode") == "polling"


def test_markup_in_a_product_name_is_shown_as_text(stack: Stack,
                                                   page_factory: tuple[BrowserContext, list[str]]) -> None:
    context, dialogs = page_factory
    log_in(context, stack.dashboard)
    order_id = f"xss-{uuid.uuid4().hex[:8]}"
    post_order(stack.api, {"user_id": "u-xss", "order_id": order_id, "user_email": "xss@example.com",
                           "order_details": {"items": [{"product": f"Chair {EVIL}", "quantity": 1,
                                                        "unit_price": "5.00"}]}})

    page = context.new_page()
    page.goto(f"{stack.dashboard}/")
    items = page.locator(f'#orders-body tr[data-order-id="{order_id}"] td[data-field="items"]')
    expect(items).to_have_text(f"Chair {EVIL}", timeout=SLOW)
    assert page.locator("#orders-body script").count() == 0

    page.goto(f"{stack.dashboard}/orders/{order_id}")
    expect(page.locator("#order-items-body td").first).to_have_text(f"Chair {EVIL}")
    assert page.locator("main script").count() == 0

    page.goto(f"{stack.dashboard}/history?q={order_id}")
    expect(page.locator(f'tr[data-order-id="{order_id}"] td.items')).to_have_text(f"Chair {EVIL}")
    assert page.locator("main script").count() == 0

    seed_id = f"seed-{uuid.uuid4().hex[:8]}"  # the seed's shape: the shop's own fields beside the price
    post_order(stack.api, {"user_id": "u-seed", "order_id": seed_id, "user_email": "seed@example.com",
                           "order_details": {"product": f"Stool {EVIL}", "quantity": 2, "price": 19.99,
                                             "notes": EVIL}})
    page.goto(f"{stack.dashboard}/")
    items = page.locator(f'#orders-body tr[data-order-id="{seed_id}"] td[data-field="items"]')
    expect(items).to_have_text(f"Stool {EVIL} × 2", timeout=SLOW)
    page.goto(f"{stack.dashboard}/orders/{seed_id}")
    extras = page.get_by_test_id("order-extras")
    expect(extras.locator("dd").first).to_have_text(f"Stool {EVIL}")
    expect(extras).to_contain_text("notes")
    assert page.locator("main script").count() == 0

    page.goto(f"{stack.dashboard}/topics")
    details = page.locator(f'[data-topic="{stack.kafka.topic("order_details")}"] [data-testid="record-value"]')
    expect(details.filter(has_text=f"Chair {EVIL}")).to_have_count(1)
    assert page.locator("main script").count() == 0
    shoot(page, "topics.png")
    assert dialogs == []


def test_a_stranger_gets_the_login_and_a_customer_over_the_limit_a_kind_word(
        stack: Stack, page_factory: tuple[BrowserContext, list[str]]) -> None:
    """Last in this module: it spends this address's orders for the minute."""
    context, dialogs = page_factory
    page = context.new_page()
    page.goto(f"{stack.dashboard}/topics")
    expect(page.get_by_test_id("login-form")).to_be_visible()  # no topics (customers' data) without a login
    assert page.locator("[data-topic]").count() == 0

    for i in range(RATE_LIMIT):  # the rest of this minute's orders from this address
        request = urllib.request.Request(f"{stack.api}/order", method="POST", headers={
            "Content-Type": "application/json"}, data=json.dumps({
                "user_id": "u-burst", "order_id": f"burst-{uuid.uuid4().hex[:8]}-{i}",
                "user_email": "burst@example.com", "order_details": {"price": "1.00"}}).encode())
        try:
            urllib.request.urlopen(request, timeout=15).close()
        except urllib.error.HTTPError as exc:
            assert exc.code == 429
            break
    page.goto(f"{stack.dashboard}/shop")
    page.get_by_test_id("qty-oak-chair").fill("1")
    page.get_by_test_id("user_id").fill("u-busy")
    page.get_by_test_id("user_email").fill("busy@example.com")
    page.get_by_test_id("place-order").click()
    message = page.get_by_test_id("form-error")
    expect(message).to_contain_text("Please wait", timeout=15_000)
    expect(message).to_contain_text("nothing was ordered yet")
    expect(page.get_by_test_id("result")).to_be_hidden()
    shoot(page, "shop-rate-limited.png")
    assert dialogs == []
