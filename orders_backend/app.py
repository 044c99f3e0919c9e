"""``create_app()``: the orders API."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from orderflow.events import OrderRequest, utcnow
from orderflow.kafka_io import BrokerUnavailable
from orders_backend.orders import place
from orders_backend.publisher import OrderPublisher
from orders_backend.settings import Settings

log = logging.getLogger(__name__)


def _problem(status: int, error: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": error, **extra}), status


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def create_app(settings: Settings | None = None, publisher: OrderPublisher | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    orders = publisher or OrderPublisher(settings.kafka, settings.publish_timeout_seconds)
    app.extensions["orders_publisher"] = orders

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _problem(exc.code or 500, exc.name, message=exc.description)

    @app.post("/order")
    def create_order() -> Any:
        """Validate an order and answer 201 once Kafka has acknowledged it."""
        if not request.is_json:
            return _problem(415, "Unsupported Media Type", message="send the order as application/json")
        body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
        try:
            order_request = OrderRequest.model_validate_json(body)
        except ValidationError as exc:
            details = _field_errors(exc)
            if any(d["type"] == "json_invalid" for d in details):
                return _problem(400, "Malformed JSON", details=details)
            return _problem(422, "Invalid order", details=details)
        order = place(order_request, utcnow())
        try:
            partition, offset = orders.publish(order)
        except BrokerUnavailable as exc:
            log.warning("order %s not accepted: %s", order.order_id, exc)
            response, status = _problem(503, "Service Unavailable",
                                        message="the order could not be stored; try again")
            response.headers["Retry-After"] = str(settings.retry_after_seconds)
            return response, status
        log.info("order %s published to partition %d at offset %d", order.order_id, partition, offset)
        response = Response(order.model_dump_json(), status=201, mimetype="application/json")
        response.headers["Location"] = f"/order/{order.order_id}"
        return response

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness, and whether this worker reaches Kafka."""
        return jsonify({"status": "ok", "kafka": "connected" if orders.connected() else "unavailable"})

    return app
