"""``create_app()``: the orders API: ``POST /order``, ``GET /order/<id>``, docs, health and metrics."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_cors import CORS
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from orderflow import metrics
from orderflow.events import OrderPlaced, OrderRequest, utcnow
from orderflow.kafka_io import BrokerUnavailable
from orderflow.table import TableNotReady, TopicTable
from orderflow.topics import ORDER_DETAILS
from orders_backend import apidoc, lookup
from orders_backend.orders import field_errors, place, same_order
from orders_backend.publisher import OrderPublisher
from orders_backend.settings import Settings

log = logging.getLogger(__name__)


def _problem(status: int, error: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": error, **extra}), status


OUTCOMES = {201: "created", 200: "duplicate", 409: "conflict", 503: "unavailable"}


def create_app(settings: Settings | None = None, publisher: OrderPublisher | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    orders = publisher or OrderPublisher(settings.kafka, settings.publish_timeout_seconds)
    app.extensions["orders_publisher"] = orders
    # Every order_id already in order_details, so a repeated POST gets the first order back.
    placed = TopicTable(settings.kafka, settings.kafka.topic(ORDER_DETAILS))
    app.extensions["orders_placed"] = placed
    id_locks = [threading.Lock() for _ in range(64)]
    api = apidoc.make_spec()
    apidoc.init_app(app, api)
    orders_lookup = lookup.init_app(app, settings, placed, api)
    if settings.cors_origin_list:
        CORS(app, resources={r"/order.*": {"origins": settings.cors_origin_list}},
             methods=["GET", "POST"], expose_headers=["Location", "Retry-After"], max_age=600)
    metrics.export(metrics.ORDERS_API)

    def unavailable(message: str, **extra: Any) -> tuple[Response, int]:
        response, status = _problem(503, "Service Unavailable", message=message, **extra)
        response.headers["Retry-After"] = str(settings.retry_after_seconds)
        return response, status

    def publish_once(order: OrderPlaced, client_id: bool) -> Any:
        key = order.order_id.encode()
        with id_locks[hash(key) % len(id_locks)]:  # the same id twice in this worker: one at a time
            try:
                # A server-made id is new by construction; a client's may be a repeat.
                existing = placed.get(key, timeout=settings.publish_timeout_seconds) if client_id else None
            except TableNotReady as exc:
                log.warning("order %s not accepted: %s", order.order_id, exc, extra={"order_id": order.order_id})
                return unavailable("cannot check for an earlier order with this id; try again")
            if existing is not None:
                return answer_repeat(OrderPlaced.model_validate_json(existing), existing, order)
            try:
                with metrics.PUBLISH_SECONDS.time():
                    partition, offset = orders.publish(order)
            except BrokerUnavailable as exc:
                log.warning("order %s not accepted: %s", order.order_id, exc, extra={"order_id": order.order_id})
                return unavailable(f"Kafka did not acknowledge order {order.order_id} in time; it may still have "
                                   "been stored, so retry with this order_id", order_id=order.order_id)
            metrics.ORDERS_PUBLISHED.inc()
            if client_id:
                lost = first_wins(order, key, partition, offset)
                if lost is not None:
                    return lost
        log.info("order %s published to partition %d at offset %d", order.order_id, partition, offset,
                 extra={"order_id": order.order_id, "outcome": "created", "partition": partition, "offset": offset,
                        "total": str(order.total)})
        response = Response(order.model_dump_json(), status=201, mimetype="application/json")
        response.headers["Location"] = f"/order/{order.order_id}"
        return response

    def first_wins(order: OrderPlaced, key: bytes, partition: int, offset: int) -> Any:
        """Two workers may publish one id at once; the first in the log is the order, the other a repeat."""
        try:
            placed.wait_for(partition, offset, timeout=settings.publish_timeout_seconds)
        except TableNotReady:
            return None  # stored and acknowledged; transactions_backend still decides an id once
        stored = placed.peek(key)
        first = OrderPlaced.model_validate_json(stored) if stored is not None else order
        if first.event_id == order.event_id:
            return None
        return answer_repeat(first, stored or b"", order)

    def answer_repeat(first: OrderPlaced, stored: bytes, order: OrderPlaced) -> Any:
        if not same_order(first, order):
            log.info("order %s refused: id used by a different order", order.order_id,
                     extra={"order_id": order.order_id, "outcome": "conflict"})
            return _problem(409, "Conflict", message=f"order_id {order.order_id} is already used by a "
                            "different order", order=first.model_dump(mode="json"))
        log.info("order %s repeated; answering the first", order.order_id,
                 extra={"order_id": order.order_id, "outcome": "duplicate"})
        return Response(stored, status=200, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _problem(exc.code or 500, exc.name, message=exc.description)

    @app.after_request
    def count_orders(response: Response) -> Response:
        if request.endpoint == "create_order" and request.method == "POST":
            code = response.status_code
            outcome = OUTCOMES.get(code, "invalid" if 400 <= code < 500 else None)
            if outcome:
                metrics.ORDERS_RECEIVED.labels(outcome).inc()
        return response

    @app.post("/order")
    @api.validate(json=OrderRequest, resp=apidoc.order_responses(), skip_validation=True)
    def create_order() -> Any:
        """Validate an order and answer 201 once Kafka has acknowledged it."""
        if not request.is_json:
            return _problem(415, "Unsupported Media Type", message="send the order as application/json")
        body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
        try:
            order_request = OrderRequest.model_validate_json(body)
        except ValidationError as exc:
            details = field_errors(exc)
            if any(d["type"] == "json_invalid" for d in details):
                return _problem(400, "Malformed JSON", details=details)
            return _problem(422, "Invalid order", details=details)
        return publish_once(place(order_request, utcnow()), client_id=order_request.order_id is not None)

    def close() -> None:
        """Release this app's Kafka clients (tests and clean worker exits)."""
        orders_lookup.close()
        placed.close()
        orders.close()

    app.extensions["orders_close"] = close

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness, and whether this worker reaches Kafka."""
        return jsonify({"status": "ok", "kafka": "connected" if orders.connected() else "unavailable"})

    @app.get("/metrics")
    def prometheus_metrics() -> Any:
        """Prometheus metrics, summed over every gunicorn worker."""
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    return app
