"""Operators log in: every dashboard route but the shop and the probes refuses a stranger; forms need CSRF."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from dashboard.app import DashboardApp, create_app
from dashboard.settings import Settings
from orderflow.settings import KafkaSettings
from tests.support import free_port, operator_client

PASSWORD = "correct horse"
OPEN = {"/shop", "/healthz", "/metrics", "/login", "/static/<path:filename>"}


def app_with(**changes: object) -> DashboardApp:
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"), feed_mode="off",
                        lag_seconds=0, operator_password_hash=generate_password_hash(PASSWORD),
                        secret_key="k" * 64, **changes)
    return create_app(settings)


def fill(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"filename": "dashboard.css"}.get(m.group(1), "order_details"), rule)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_every_route_but_the_open_ones_refuses_a_stranger() -> None:
    app = app_with()
    client = app.test_client()
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule not in OPEN]
    assert {r.rule for r in rules} >= {"/", "/api/state", "/api/stream", "/orders/<order_id>",
                                       "/api/orders/<order_id>", "/history", "/api/history", "/api/search",
                                       "/topics", "/dead-letters", "/dead-letters/<source>/replay", "/logout"}
    for rule in rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(fill(rule.rule), method=method)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401 and response.json["error"] == "Unauthorized", rule.rule
            else:
                assert response.status_code == 302, (method, rule.rule, response.status_code)
                assert response.headers["Location"].startswith("/login?next="), rule.rule
    for path in ("/shop", "/healthz", "/metrics", "/login", "/static/dashboard.css"):
        assert client.get(path).status_code == 200, path


def test_logging_in_takes_the_right_password_and_a_csrf_token() -> None:
    client = app_with().test_client()
    token = csrf_token(client)
    assert client.post("/login", data={"operator": "operator", "password": PASSWORD}).status_code == 400  # no token
    wrong = client.post("/login", data={"operator": "operator", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    assert client.get("/topics").status_code == 302
    right = client.post("/login?next=/topics", data={"operator": "operator", "password": PASSWORD,
                                                     "csrf_token": token})
    assert right.status_code == 302 and right.headers["Location"] == "/topics"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert client.get("/api/state").status_code == 200
    assert client.post("/logout").status_code == 400  # a form without its token changes nothing
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/topics")}).status_code == 302
    assert client.get("/api/state").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_a_login_never_sends_the_browser_elsewhere(target: str) -> None:
    client = app_with(cookie_secure=False).test_client()
    response = client.post(f"/login?next={target}", data={"operator": "operator", "password": PASSWORD,
                                                          "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/"


def test_without_a_configured_password_nobody_logs_in() -> None:
    app = create_app(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"), feed_mode="off",
                              lag_seconds=0))
    client = app.test_client()
    page = client.get("/login")
    assert "DASHBOARD_OPERATOR_PASSWORD_HASH" in page.text
    refused = client.post("/login", data={"operator": "operator", "password": "", "csrf_token": csrf_token(client)})
    assert refused.status_code == 401 and client.get("/api/state").status_code == 401


def test_operator_actions_need_their_token_even_when_logged_in() -> None:
    client = operator_client(app_with())
    assert client.post("/dead-letters/order_details/replay").status_code == 400


def test_pages_send_a_referrer_policy_and_the_strict_csp() -> None:
    response = app_with().test_client().get("/login")
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in response.text  # no inline code
