"""``create_app()``: the orders API: ``POST /order``, ``GET /order/<id>``, docs, health and metrics."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_limiter.errors import RateLimitExceeded
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from orderflow import metrics, web
from orderflow.errors import ServiceUnavailable
from orderflow.events import OrderRequest, utcnow
from orderflow.jsonbody import MalformedJson
from orderflow.kafka import EndOffsets
from orderflow.store import OrderStore, StoreCorrupted, StoreUnavailable
from orderflow.topics import ORDER_DETAILS
from orders_backend import apidoc
from orders_backend.access import ApiKeys, presented_key
from orders_backend.intake import Answer, OrderIntake
from orders_backend.lookup import OrderLookup
from orders_backend.orders import field_errors, place
from orders_backend.publisher import OrderPublisher
from orders_backend.ratelimit import make_limiter, retry_after
from orders_backend.settings import Settings
from orders_backend.stored import StoredOrders

log = logging.getLogger(__name__)

OUTCOMES = {201: "created", 200: "duplicate", 409: "conflict", 503: "unavailable"}


class OrdersApp(Flask):
    """The API and the objects its routes use (so that gunicorn's hooks and tests reach them by name)."""

    publisher: OrderPublisher
    intake: OrderIntake
    lookup: OrderLookup
    store: OrderStore
    ends: EndOffsets
    own_dirs: list[str]

    def close(self) -> None:
        """Release this app's clients and its own files (tests and clean worker exits)."""
        self.ends.close()
        self.store.close()
        self.publisher.close()
        for path in self.own_dirs:
            shutil.rmtree(path, ignore_errors=True)


def answer(result: Answer) -> Response:
    if isinstance(result.body, bytes):
        response = Response(result.body, status=result.status, mimetype="application/json")
    else:
        response = web.problem(result.status, **result.body)
    response.headers.update(result.headers)
    return response


def create_app(settings: Settings | None = None, publisher: OrderPublisher | None = None) -> OrdersApp:
    settings = settings or Settings()
    app = OrdersApp(__name__)
    # One byte over the limit: for a chunked body werkzeug stops reading AT the limit without raising,
    # so only a body that reaches limit + 1 shows it was longer (create_order checks that).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    keys = ApiKeys(settings.api_keys)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Flask's default provider has it; the base has not
    app.publisher = publisher or OrderPublisher(settings.kafka, settings.publish_timeout_seconds)
    # Orders as the order store holds them: a repeated POST gets the first order back, GET finds it.
    app.store = OrderStore.open(settings.store)
    app.ends = EndOffsets(settings.kafka, settings.kafka.topic(ORDER_DETAILS))
    orders = StoredOrders(app.store, app.ends)
    app.intake = OrderIntake(app.publisher, orders, timeout=settings.publish_timeout_seconds)
    api = apidoc.make_spec()
    apidoc.init_app(app, api)
    app.lookup = OrderLookup(settings, orders, keys)
    app.lookup.init_app(app, api)
    if settings.cors_origin_list:
        CORS(app, resources={r"/order.*": {"origins": settings.cors_origin_list}},
             methods=["GET", "POST"], allow_headers=["Content-Type", "Authorization", "X-API-Key"],
             expose_headers=["Location", "Retry-After"], max_age=600)
    # Counters shared by the workers: the file gunicorn's master chose, or this app's own.
    own_dir = None if settings.rate_limit_storage else tempfile.mkdtemp(prefix="orders-ratelimit-")
    limiter = make_limiter(settings.rate_limit_storage or f"sqlite:///{own_dir}/ratelimit.sqlite3")
    app.own_dirs = [own_dir] if own_dir else []

    def limited(view: Callable[..., Any]) -> Callable[..., Any]:
        return limiter.limit(settings.rate_limit)(view) if settings.rate_limit else view
    metrics.export(metrics.ORDERS_API)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return web.http_problem(exc)

    @app.before_request
    def require_key() -> Response | None:
        """With keys configured, orders are posted and read with one; ``g.customer`` is its owner."""
        g.customer = keys.owner(presented_key(request))
        if keys.required and request.endpoint in ("create_order", "get_order") and g.customer is None:
            response = web.problem(401, "Unauthorized", message="give your API key: Authorization: Bearer <key>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="orders"'
            return response
        return None

    limiter.init_app(app)  # after require_key: a limit counts the key's owner, once it is known

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded) -> Response:
        response = web.problem(429, "Too Many Requests", message=f"over this client's limit of {exc.description}; "
                               "retry after Retry-After seconds")
        response.headers["Retry-After"] = str(retry_after(limiter))
        return response

    @app.errorhandler(ServiceUnavailable)
    def service_unavailable(exc: ServiceUnavailable) -> Response:
        return web.unavailable(exc.message, settings.retry_after_seconds, **exc.fields)

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(StoreCorrupted)  # the projector moves it aside and rebuilds it
    def store_unavailable(exc: Exception) -> Response:
        log.warning("order store unavailable: %s", exc)
        return web.unavailable("the order store cannot be read now; try again", settings.retry_after_seconds)

    @app.after_request
    def count_orders(response: Response) -> Response:
        if request.endpoint == "create_order" and request.method == "POST":
            code = response.status_code
            outcome = OUTCOMES.get(code, "invalid" if 400 <= code < 500 else None)
            if outcome:
                metrics.ORDERS_RECEIVED.labels(outcome).inc()
        return response

    @app.post("/order")
    @limited
    @api.validate(json=OrderRequest, resp=apidoc.order_responses(), skip_validation=True)
    def create_order() -> Any:
        """Validate an order and answer 201 once Kafka has acknowledged it."""
        if not request.is_json or request.mimetype_params.get("charset", "utf-8").lower() != "utf-8":
            return web.problem(415, "Unsupported Media Type", message="send the order as application/json in UTF-8")
        body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH when the length is announced
        if len(body) > settings.max_body_bytes:  # a chunked body, read up to one byte past the limit
            return web.problem(413, "Request Entity Too Large",
                               message=f"the body is over ORDERS_MAX_BODY_BYTES ({settings.max_body_bytes} bytes)")
        try:
            order_request = OrderRequest.from_json(body)
        except MalformedJson as exc:
            return web.problem(400, "Malformed JSON",
                               details=[{"field": "(body)", "message": str(exc), "type": "json_invalid"}])
        except ValidationError as exc:
            return web.problem(422, "Invalid order", details=field_errors(exc))
        if keys.required and order_request.user_id != g.customer:
            return web.problem(403, "Forbidden", message="this key places orders for its own user_id only")
        order = place(order_request, utcnow())
        return answer(app.intake.submit(order, client_id=order_request.order_id is not None))

    @app.get("/healthz")
    def healthz() -> Any:
        """Readiness: 200 when this worker can have an order acknowledged by Kafka now, 503 and why not otherwise."""
        why = app.publisher.unready()
        if why is None:
            return {"status": "ok", "kafka": "connected"}
        return web.unavailable(f"orders cannot be acknowledged now: {why}", settings.retry_after_seconds,
                               kafka="unavailable")

    @app.get("/metrics")
    def prometheus_metrics() -> Any:
        """Prometheus metrics, summed over every gunicorn worker."""
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    return app
