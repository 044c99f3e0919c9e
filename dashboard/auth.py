"""Operators log in: every page but the shop (and the probes' ``/healthz`` and ``/metrics``) needs it.

One operator account from settings, its password hashed (``werkzeug.security``: scrypt); the login
lives in Flask's signed session cookie (HttpOnly, SameSite=Strict, Secure outside a plain local run);
every state-changing form carries a CSRF token (Flask-WTF), checked on every POST of the app.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash

from dashboard.settings import Settings
from orderflow import web

log = logging.getLogger(__name__)

# Open to anyone: customers' shop page, its static files, the login itself, and the probes.
PUBLIC = frozenset({"shop_page", "static", "login", "healthz", "prometheus_metrics"})


def _safe_next(target: str | None) -> str:
    """Only a path of this site: a login never sends the browser elsewhere."""
    if not target or urlsplit(target).netloc or urlsplit(target).scheme or not target.startswith("/") \
            or target.startswith("//"):
        return url_for("index")
    return target


def init_app(app: Flask, settings: Settings) -> None:
    if settings.secret_key is None:
        log.warning("DASHBOARD_SECRET_KEY is not set: a random key is used, and a restart logs everyone out")
    app.config.update(
        SECRET_KEY=(settings.secret_key.get_secret_value() if settings.secret_key else secrets.token_hex(32)),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_NAME="orderflow_operator", PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the login does
    )
    password_hash = settings.operator_password_hash.get_secret_value() if settings.operator_password_hash else None
    if password_hash is None:
        log.warning("DASHBOARD_OPERATOR_PASSWORD_HASH is not set: nobody can log in to the dashboard")

    @app.before_request
    def require_login() -> Any:
        if request.endpoint in PUBLIC or session.get("operator") == settings.operator:
            return None
        if request.path.startswith("/api/"):
            return web.problem(401, "Unauthorized", message="log in to the dashboard first")
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    CSRFProtect(app)  # after the login check: a stranger is sent to log in before any token is asked for

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        """The operator's login form; a good password starts a session and goes where the operator was going."""
        error = None
        if request.method == "POST":
            name, password = request.form.get("operator", ""), request.form.get("password", "")
            if password_hash and secrets.compare_digest(name, settings.operator) \
                    and check_password_hash(password_hash, password):
                session.clear()
                session["operator"] = settings.operator
                session.permanent = True
                log.info("operator %s logged in", settings.operator)
                return redirect(_safe_next(request.args.get("next")))
            error = "wrong name or password" if password_hash else "no operator account is configured"
            log.warning("failed dashboard login from %s", request.remote_addr)
        page = render_template("login.html", error=error, configured=password_hash is not None)
        return Response(page, status=401 if error else 200)

    @app.post("/logout")
    def logout() -> Any:
        """End the operator's session."""
        session.clear()
        return redirect(url_for("login"))
