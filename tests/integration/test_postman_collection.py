"""postman/orderflow.postman_collection.json: a valid v2.1 collection whose requests get the statuses they declare.

No PyPI package ships Postman's collection schema, so the v2.1 rules the collection relies on are
written out below (required keys and types, as in schema.getpostman.com's v2.1.0 document).
The requests are sent in order to gunicorn serving the API, as a Postman runner would; pre-request
scripts are not run (they only give `orderId` a fresh value, and the topics here are fresh anyway).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orderflow.settings import KafkaSettings
from tests.support import ROOT, LiveApi

pytestmark = pytest.mark.integration

COLLECTION = ROOT / "postman" / "orderflow.postman_collection.json"
V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
STATUS = re.compile(r"pm\.response\.to\.have\.status\((\d{3})\)")

_script = {"type": "object", "required": ["exec"], "properties": {
    "type": {"type": "string"}, "exec": {"type": ["array", "string"], "items": {"type": "string"}}}}
_url = {"oneOf": [{"type": "string"}, {"type": "object", "required": ["raw"], "properties": {
    "raw": {"type": "string"}, "host": {"type": ["array", "string"]}, "path": {"type": ["array", "string"]},
    "query": {"type": "array", "items": {"type": "object", "required": ["key"]}}}}]}
_request = {"type": "object", "required": ["method", "url"], "properties": {
    "method": {"enum": ["GET", "PUT", "POST", "PATCH", "DELETE", "COPY", "HEAD", "OPTIONS", "LINK", "UNLINK", "PURGE",
                        "LOCK", "UNLOCK", "PROPFIND", "VIEW"]},
    "url": _url,
    "header": {"type": "array", "items": {"type": "object", "required": ["key", "value"]}},
    "body": {"type": "object", "properties": {"mode": {"enum": ["raw", "urlencoded", "formdata", "file", "graphql"]},
                                              "raw": {"type": "string"}}}}}
SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["info", "item"],
    "properties": {
        "info": {"type": "object", "required": ["name", "schema"],
                 "properties": {"name": {"type": "string"}, "schema": {"const": V21}}},
        "item": {"type": "array", "items": {"type": "object", "required": ["request"], "properties": {
            "name": {"type": "string"}, "request": _request,
            "event": {"type": "array", "items": {"type": "object", "required": ["listen"], "properties": {
                "listen": {"enum": ["test", "prerequest"]}, "script": _script}}},
            "response": {"type": "array"}}}},
        "variable": {"type": "array", "items": {"type": "object", "required": ["key"], "properties": {
            "key": {"type": "string"}, "value": {}}}},
    },
}


@pytest.fixture(scope="module")
def collection() -> dict[str, Any]:
    return json.loads(COLLECTION.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def declared_status(item: dict[str, Any]) -> int:
    tests = [e for e in item.get("event", []) if e["listen"] == "test"]
    code = "\n".join(line for e in tests for line in e["script"]["exec"])
    statuses = STATUS.findall(code)
    assert len(statuses) == 1 and "pm.test(" in code, f"{item['name']}: one pm.test declaring its status"
    return int(statuses[0])


def test_the_collection_is_v21_with_a_base_url_variable(collection: dict[str, Any]) -> None:
    jsonschema.validate(collection, SCHEMA)
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["baseUrl"] == "http://127.0.0.1:5002"
    for item in collection["item"]:
        url = item["request"]["url"]
        assert url["raw"].startswith("{{baseUrl}}/") and url["host"] == ["{{baseUrl}}"], item["name"]


def test_the_collection_covers_the_api_contract(collection: dict[str, Any]) -> None:
    declared = [(i["request"]["method"], i["request"]["url"]["path"][0], declared_status(i))
                for i in collection["item"]]
    assert declared[0] == ("POST", "order", 201) and declared[1] == ("POST", "order", 200)
    assert {s for m, p, s in declared if (m, p) == ("POST", "order")} == {201, 200, 409, 400, 415, 422}
    assert ("GET", "healthz", 200) in declared
    bodies = {i["name"]: i["request"].get("body", {}).get("raw", "") for i in collection["item"]}
    assert '"price": 1000000000000' in bodies["Absurd price"] and "user_email" not in bodies["Missing field"]


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"unknown variable {match.group(0)}"
        return variables[match.group(1)]

    return re.sub(r"\{\{(\w+)\}\}", value, text)


def send(item: dict[str, Any], variables: dict[str, str]) -> tuple[int, bytes]:
    request = item["request"]
    body = request.get("body", {}).get("raw")
    http = urllib.request.Request(
        substitute(request["url"]["raw"], variables), method=request["method"],
        data=substitute(body, variables).encode() if body is not None else None,
        headers={h["key"]: substitute(h["value"], variables) for h in request["header"]})
    try:
        with urllib.request.urlopen(http, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def api(kafka_settings: KafkaSettings, logs_dir: Path) -> Iterator[str]:
    with LiveApi(kafka_settings, logs_dir) as live:
        yield live.url


def test_every_request_gets_the_status_it_declares(collection: dict[str, Any], api: str) -> None:
    variables = {v["key"]: str(v["value"]) for v in collection["variable"]} | {"baseUrl": api}
    results = []
    for item in collection["item"]:
        status, body = send(item, variables)
        results.append((item["name"], declared_status(item), status, body))
    assert [(name, got) for name, _, got, _ in results] == [(name, want) for name, want, _, _ in results], [
        (name, got, body[:300]) for name, _, got, body in results]
    assert json.loads(results[0][3])["order_id"] == variables["orderId"]
