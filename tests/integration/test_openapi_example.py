"""The example order in the OpenAPI document is accepted by the live endpoint (real broker)."""

from __future__ import annotations

import pytest

from orderflow.events import OrderPlaced
from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings
from orderflow.topics import ORDER_DETAILS
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import read_models

pytestmark = pytest.mark.integration


def test_the_spec_example_is_accepted_and_stored(kafka_settings: KafkaSettings,
                                                 projected_store: StoreSettings) -> None:
    app = create_app(Settings(kafka=kafka_settings, store=projected_store))
    try:
        client = app.test_client()
        spec = client.get("/openapi.json").json
        post = spec["paths"]["/order"]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        example = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["examples"][0]
        response = client.post("/order", json=example)
        assert response.status_code == 201, response.json
        assert "201" in post["responses"]
        placed = OrderPlaced.model_validate(response.json)
        assert placed.user_email == example["user_email"]
        stored = read_models(kafka_settings, kafka_settings.topic(ORDER_DETAILS), OrderPlaced)
        assert [o.order_id for o in stored] == [placed.order_id]
    finally:
        app.close()
