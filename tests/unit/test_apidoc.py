"""The OpenAPI document is generated from the contracts, and its docs page needs nothing from outside."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from orderflow.events import OrderRequest
from orderflow.settings import KafkaSettings
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import free_port


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    # No broker needed: the app makes no connection until an order or a lookup asks for one.
    app = create_app(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")))
    yield app.test_client()
    app.close()


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.json  # type: ignore[return-value]


def resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_post_order_is_described_by_the_pydantic_contracts(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    post = spec["paths"]["/order"]["post"]
    body = resolve(spec, post["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert body["properties"].keys() == OrderRequest.model_json_schema()["properties"].keys()
    assert set(body["required"]) == {"user_id", "user_email", "order_details"}
    responses = post["responses"]
    assert set(responses) == {"200", "201", "400", "401", "403", "409", "413", "415", "422", "429", "503"}
    for code in ("200", "201"):
        placed = resolve(spec, responses[code]["content"]["application/json"]["schema"]["$ref"])
        assert placed["title"] == "OrderPlaced"
        assert placed["properties"]["total"]["type"] == "string", "money is a string on the wire"
    for code in ("400", "409", "413", "415", "422", "503"):
        problem = resolve(spec, responses[code]["content"]["application/json"]["schema"]["$ref"])
        assert "error" in problem["required"], code
    assert "details" in resolve(spec, responses["422"]["content"]["application/json"]["schema"]["$ref"])["required"]
    assert "order" in resolve(spec, responses["409"]["content"]["application/json"]["schema"]["$ref"])["properties"]


def test_the_example_order_is_a_valid_request(spec: dict[str, Any]) -> None:
    post = spec["paths"]["/order"]["post"]
    examples = resolve(spec, post["requestBody"]["content"]["application/json"]["schema"]["$ref"])["examples"]
    orders = [OrderRequest.model_validate(example) for example in examples]
    assert len(orders) == 2 and all(order.order_details.total > 0 for order in orders)
    assert orders[1].order_details.extras == {"product": "chair", "quantity": 1}  # the seed's shape


def test_order_lookup_is_described_with_its_query(spec: dict[str, Any]) -> None:
    get = spec["paths"]["/order/{order_id}"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert params["order_id"]["in"] == "path" and params["order_id"]["required"] is True
    assert params["wait"]["in"] == "query" and params["wait"]["schema"]["maximum"] == 10
    assert params["until"]["schema"]["enum"] == ["received", "decided", "emailed"]
    assert set(get["responses"]) == {"200", "401", "404", "422", "503"}
    answer = resolve(spec, get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(answer["required"]) == {"order", "status"}
    assert answer["properties"]["status"]["enum"] == ["received", "confirmed", "rejected"]


def test_only_the_api_is_in_the_document(spec: dict[str, Any]) -> None:
    assert set(spec["paths"]) == {"/order", "/order/{order_id}"}


def test_docs_page_loads_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "://" not in html, "no CDN: the docs must work offline"
    assert 'data-spec-url="/openapi.json"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css", "apidocs.js"}
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 100, asset
        response.close()
    assert b"SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").get_data()


def test_docs_assets_serve_nothing_else(client: FlaskClient) -> None:
    assert client.get("/docs/assets/LICENSE").status_code == 404
    assert client.get("/docs/assets/..%2Fcore.py").status_code == 404

