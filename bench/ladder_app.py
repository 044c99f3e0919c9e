"""The lower rungs of the HTTP ladder, served by the same gunicorn config as the real API.

    gunicorn -c orders_backend/gunicorn_conf.py 'bench.ladder_app:create_app("bare")'

``bare``: read the body, answer 201. ``validate``: + the real pydantic validation and ``place()``, answer
the order as the real API does. ``nowait``: + hand the record to the producer without waiting for the
broker's ack. The top rung is the real ``orders_backend.wsgi:app``.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, request

from orderflow.events import OrderRequest, utcnow
from orderflow.kafka import make_producer
from orderflow.topics import ORDER_DETAILS
from orders_backend.orders import place
from orders_backend.settings import Settings

CREATED = b'{"status":"created"}'


def create_app(rung: str) -> Flask:
    settings = Settings()
    app = Flask(__name__)
    topic = settings.kafka.topic(ORDER_DETAILS)
    lock = threading.Lock()
    producer: list[Any] = []

    def get_producer() -> Any:
        with lock:  # one per worker, after the fork, as OrderPublisher does
            if not producer:
                ms = int(settings.publish_timeout_seconds * 1000)
                producer.append(make_producer(settings.kafka, max_block_ms=ms, request_timeout_ms=ms,
                                              delivery_timeout_ms=ms + 1000))
            return producer[0]

    @app.post("/order")
    def order() -> Response:
        body = request.get_data(cache=False)
        if rung == "bare":
            return Response(CREATED, status=201, mimetype="application/json")
        placed = place(OrderRequest.model_validate_json(body), utcnow())
        if rung == "nowait":
            get_producer().send(topic, key=placed.order_id.encode(), value=placed.to_bytes())
        return Response(placed.model_dump_json(), status=201, mimetype="application/json")

    return app
