"""``create_app()``: the dashboard's page, its JSON state and its health check."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template

from dashboard import auth, deadletters, order_pages, pages, stream
from dashboard.feed import Feed
from dashboard.lag import LagWatcher
from dashboard.settings import Settings
from dashboard.view import DashboardState
from orderflow import metrics
from orderflow.store import OrderStore

log = logging.getLogger(__name__)

# Everything the page loads comes from this server; no inline script, no CDN.
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class DashboardApp(Flask):
    """The dashboard and the objects its routes use (gunicorn's hooks and tests reach them by name)."""

    feed: Feed
    store: OrderStore
    streams: stream.Streams


def create_app(settings: Settings | None = None, view: DashboardState | None = None,
               store: OrderStore | None = None) -> DashboardApp:
    """The dashboard over ``view`` (a fresh ``DashboardState`` unless given), fed from the order store
    (``store``, else the one of ``settings.store``, opened read-only: the projector owns its schema) and
    from Kafka (analytics totals, dead letters, consumer lag).

    The reader threads start on the first request (``feed_mode="lazy"``), here (``"eager"``), or
    never (``"off"``, for tests that fill ``view`` themselves; the order pages still read the store).
    """
    settings = settings or Settings()
    state = view if view is not None else DashboardState(max_orders=settings.max_orders,
                                                         window_seconds=settings.chart_window_seconds)
    store = store or OrderStore.open(settings.store, read_only=True)  # no connection before the first read
    lag = LagWatcher(settings.kafka, settings.lag_seconds) if settings.lag_seconds else None
    feed = Feed(settings.kafka, state, store=store, store_interval=settings.store_poll_ms / 1000, lag=lag)
    csp = f"{CSP}; connect-src 'self' {settings.orders_api_origin}"  # the shop page posts to the orders API
    app = DashboardApp(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask's default provider has it; the base has not
    app.feed = feed
    app.store = store
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
        """Counts, analytics totals, the latest orders with their timeline, and the readers' status."""
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
        """Liveness, and whether the readers reach Kafka and the order store."""
        off = settings.feed_mode == "off"
        kafka = "off" if off else ("connected" if feed.connected else "unavailable")
        readable = feed.orders is not None and feed.orders.connected
        return jsonify({"status": "ok", "kafka": kafka, "store": "off" if off else ("available" if readable
                                                                                   else "unavailable"),
                        "streams": {"open": streams.open, "limit": streams.limit}})

    streams = app.streams = stream.init_app(app, feed, settings)
    pages.init_app(app, settings)
    order_pages.init_app(app, store, settings)
    deadletters.init_app(app, settings)
    return app
