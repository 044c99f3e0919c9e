"""Orders read from the order store on request: one order, the history newest first, and search.

``/orders/<id>`` and ``/api/orders/<id>`` answer any order the store holds (a primary-key lookup).
``/history`` pages through every order newest first by keyset (``OrderStore.page``): the link to the
next page carries the last row's cursor, ``before=<ISO time>|<order_id>``, so a page stays the same
however many orders arrive meanwhile. ``/history?q=`` finds orders whose id, customer id or email is
exactly the term (``OrderStore.search``). ``/api/history`` and ``/api/search`` answer the same as JSON.

Read-only, behind the operator's login like every page (``dashboard.auth``); user text goes through
Jinja's autoescaping. While the store cannot be read they answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, render_template, request, url_for

from dashboard.order_view import OrderView
from dashboard.settings import Settings
from orderflow import web
from orderflow.store import Cursor, OrderRow, OrderStore, StoreCorrupted, StoreUnavailable

log = logging.getLogger(__name__)

HISTORY_PAGE = 50  # orders per page of the history
SEARCH_SHOWN = 100  # orders shown for one search term, newest first
API_MAX = 200  # at most this many orders per JSON answer
RETRY_AFTER = 5  # seconds, when the store cannot be read
CURSOR_CHARS = 200
NOT_READABLE = (StoreUnavailable, StoreCorrupted)


def cursor_text(cursor: Cursor) -> str:
    """``2025-03-01T12:00:00.250000Z|o-1``: the row's time in UTC and its order id."""
    at, order_id = cursor
    return f"{at.astimezone(UTC).isoformat().replace('+00:00', 'Z')}|{order_id}"


def parse_cursor(text: str) -> Cursor:
    """The cursor ``cursor_text`` wrote; ``ValueError`` for anything else (a time without its offset too)."""
    at_text, bar, order_id = text[:CURSOR_CHARS + 1].partition("|")
    if len(text) > CURSOR_CHARS or not bar or not order_id:
        raise ValueError("a cursor is <ISO time>|<order_id>, as the previous page's link gives it")
    at = datetime.fromisoformat(at_text)
    if at.tzinfo is None:
        raise ValueError("a cursor's time needs its offset (Z for UTC)")
    return at.astimezone(UTC), order_id


def cursor_of(row: OrderRow) -> str:
    """The cursor of a row of a page (every row of a page has its order's time)."""
    cursor = row.cursor
    if cursor is None:
        raise ValueError(f"order {row.order_id} has no place in the history yet")
    return cursor_text(cursor)


def shown(rows: list[OrderRow]) -> list[OrderView]:
    """The rows that hold an order (an email outcome read before its order is not one yet)."""
    return [view for view in (OrderView.of(row) for row in rows) if view is not None]


def _limit(default: int) -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return default
    if not raw.isdecimal() or not 1 <= int(raw) <= API_MAX:
        raise ValueError(f"limit must be a whole number from 1 to {API_MAX}")
    return int(raw)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, store: OrderStore, settings: Settings) -> None:

    def unreadable_page(exc: Exception, render: Callable[[str], str]) -> Any:
        log.warning("order store not readable for %s: %s", request.path, exc)
        return render("The order store cannot be read right now (store unavailable); try again in a few "
                      "seconds."), 503, {"Retry-After": str(RETRY_AFTER)}

    def unreadable_json(exc: Exception) -> Response:
        log.warning("order store not readable for %s: %s", request.path, exc)
        return web.unavailable("store unavailable: the order store cannot be read right now", RETRY_AFTER)

    @app.get("/orders/<order_id>")
    def order_page(order_id: str) -> Any:
        """One order's timeline, whatever its age; its script follows it until its last step."""
        def render(problem: str | None = None, order: dict[str, Any] | None = None) -> str:
            return render_template("order.html", order=order, order_id=order_id, problem=problem,
                                   refresh_ms=settings.refresh_ms)
        try:
            row = store.get(order_id)
        except NOT_READABLE as exc:
            return unreadable_page(exc, render)
        view = None if row is None else OrderView.of(row)
        return render(order=None if view is None else view.to_json()), 200 if view is not None else 404

    @app.get("/api/orders/<order_id>")
    def api_order(order_id: str) -> Any:
        """One order as JSON; 404 while the store has no such order (yet)."""
        try:
            row = store.get(order_id)
        except NOT_READABLE as exc:
            return unreadable_json(exc)
        view = None if row is None else OrderView.of(row)
        if view is None:
            return web.problem(404, "Not Found", message="no such order in the order store (yet)")
        return _no_store(jsonify(view.to_json()))

    @app.get("/history")
    def history_page() -> Any:
        """Every order, newest first, a page at a time (``before``: a cursor); or those a search term finds (``q``)."""
        query = request.args.get("q", "").strip()
        before = request.args.get("before", "")

        def render(problem: str | None = None, orders: list[OrderView] | None = None, older: str | None = None,
                   more: bool = False) -> str:
            return render_template("history.html", query=query, before=before, orders=orders or [], older=older,
                                   more=more, problem=problem, page_size=HISTORY_PAGE, search_shown=SEARCH_SHOWN)
        try:
            if query:
                found = shown(store.search(query, SEARCH_SHOWN + 1))
                return render(orders=found[:SEARCH_SHOWN], more=len(found) > SEARCH_SHOWN)
            try:
                cursor = parse_cursor(before) if before else None
            except ValueError as exc:
                return render(problem=f"That page link is not one this page made: {exc}."), 400
            rows = store.page(cursor, HISTORY_PAGE + 1)
        except NOT_READABLE as exc:
            return unreadable_page(exc, render)
        older = cursor_of(rows[HISTORY_PAGE - 1]) if len(rows) > HISTORY_PAGE else None
        return render(orders=shown(rows[:HISTORY_PAGE]), older=older)

    @app.get("/api/history")
    def api_history() -> Any:
        """``{"orders": [...], "next": <cursor of the next page> | null}``, newest first, ``limit`` per page."""
        try:
            limit = _limit(HISTORY_PAGE)
            before = request.args.get("before", "")
            cursor = parse_cursor(before) if before else None
        except ValueError as exc:
            return web.problem(400, "Bad Request", message=str(exc))
        try:
            rows = store.page(cursor, limit + 1)
        except NOT_READABLE as exc:
            return unreadable_json(exc)
        page = rows[:limit]
        following = cursor_of(page[-1]) if len(rows) > limit else None
        body = {"orders": [v.to_json() for v in shown(page)], "next": following,
                "next_url": url_for("api_history", before=following, limit=limit) if following else None}
        return _no_store(jsonify(body))

    @app.get("/api/search")
    def api_search() -> Any:
        """``{"query": q, "orders": [...]}``: orders whose id, customer id or email is exactly ``q``, newest first."""
        query = request.args.get("q", "").strip()
        try:
            limit = _limit(SEARCH_SHOWN)
            if not query:
                raise ValueError("q (an order id, customer id or email) is required")
        except ValueError as exc:
            return web.problem(400, "Bad Request", message=str(exc))
        try:
            rows = store.search(query, limit)
        except NOT_READABLE as exc:
            return unreadable_json(exc)
        return _no_store(jsonify({"query": query, "orders": [v.to_json() for v in shown(rows)]}))
