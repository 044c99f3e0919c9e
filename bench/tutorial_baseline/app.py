"""The tutorial's API: ``POST /order`` copies five fields into a dict, sends it, returns it (no wait)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from flask import Flask, request
from kafka import KafkaProducer

app = Flask(__name__)
producer = KafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                         value_serializer=lambda v: json.dumps(v).encode("utf-8"))
TOPIC = os.environ.get("KAFKA_TOPIC_PREFIX", "") + "order_details"


@app.post("/order")
def create_order() -> Any:
    data = request.get_json()
    order = {"user_id": data["user_id"], "order_id": data["order_id"], "user_email": data["user_email"],
             "order_details": data["order_details"], "time": time.time()}
    producer.send(TOPIC, order)
    return order
