"""``create_app()``: the dashboard's page, its JSON state and its health check."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template

from dashboard import auth, deadletters, pages, stream
from dashboard.feed import Feed
from dashboard.lag import LagWatcher
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow import metrics

log = logging.getLogger(__name__)

# Everything the page loads comes from this server; no inline script, no CDN.
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class DashboardApp(Flask):
    """The dashboard and the objects its routes use (gunicorn's hooks and tests reach them by name)."""

    feed: Feed
    streams: stream.Streams


def create_app(settings: Settings | None = None, view: DashboardState | None = None) -> DashboardApp:
    """The dashboard over ``view`` (a fresh ``DashboardState`` unless given), fed from Kafka.

    The reader thread starts on the first request (``feed_mode="lazy"``), here (``"eager"``), or
    never (``"off"``, for tests that fill ``view`` themselves).
    """
    settings = settings or Settings()
    state = view if view is not None else DashboardState(max_orders=settings.max_orders,
                                                         window_seconds=settings.chart_window_seconds)
    lag = LagWatcher(settings.kafka, settings.lag_seconds) if settings.lag_seconds else None
    feed = Feed(settings.kafka, state, history=settings.max_orders, lag=lag)
    csp = f"{CSP}; connect-src 'self' {settings.orders_api_origin}"  # the shop page posts to the orders API
    app = DashboardApp(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask's default provider has it; the base has not
    app.feed = feed
    auth.init_app(app, settings)

    if settings.feed_mode != "off":
        app.before_request(feed.start)
    if settings.feed_mode == "eager":
        feed.start()

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.get("/")
    def index() -> str:
        """The live page; its script follows ``/api/stream`` (or polls ``/api/state`` every ``refresh_ms``)."""
        return render_template("index.html", refresh_ms=settings.refresh_ms, max_orders=settings.max_orders)

    @app.get("/api/state")
    def api_state() -> Any:
        """Counts, analytics totals, the latest orders with their timeline, and the reader's status."""
        response = jsonify(feed.snapshot())
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/metrics")
    def prometheus_metrics() -> Any:
        """Prometheus metrics of this (single) worker."""
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness, and whether the reader is connected to Kafka."""
        kafka = "off" if settings.feed_mode == "off" else ("connected" if feed.connected else "unavailable")
        return jsonify({"status": "ok", "kafka": kafka, "streams": {"open": streams.open, "limit": streams.limit}})

    streams = app.streams = stream.init_app(app, feed, settings)
    pages.init_app(app, feed, settings)
    deadletters.init_app(app, settings)
    return app
