"""schemathesis against the live API (gunicorn, real broker) with every check on.

The OpenAPI document is the API's own, built in-process (nothing connects). Cases are fixed by the seed
and bounded by the example budget, so the run is the same every time and fits the suite; ``make bench``
is where longer runs belong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from orderflow.kafka import ensure_topics
from orderflow.settings import KafkaSettings
from orders_backend.app import create_app
from orders_backend.settings import Settings
from tests.support import LiveApi, free_port

pytestmark = pytest.mark.integration

SEED = 20261201
MAX_EXAMPLES = 40  # per operation, for the fuzzing phase; the examples and coverage phases come on top


def openapi_document() -> dict[str, Any]:
    app = create_app(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")))
    try:
        return app.test_client().get("/openapi.json").get_json()  # type: ignore[no-any-return]
    finally:
        app.close()


CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    # Stateful runs need links between operations, which this API's two operations do not have.
    "phases": {"stateful": {"enabled": False}},
    # Every check stays on. Two are given what this API answers by design, each for a written reason:
    "checks": {
        # GET /order/<id>?wait= waits up to 10 s when asked to: the limit is that and a margin.
        "max_response_time": 12.0,
        # A body over ORDERS_MAX_BODY_BYTES is refused with 413 (documented) whatever it holds: JSON
        # Schema cannot bound a body's size, and nested lists within their bounds can exceed it. And the
        # fuzzer posts faster than the per-client limit lets anyone: 429 (documented) is its answer.
        "positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 413, 429, "5xx"]},
        "negative_data_rejection": {"expected-statuses": [400, 404, 405, 409, 413, 415, 422, 429, "5xx"]},
    },
    "request-timeout": 15,
})
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix="fuzz.", partitions=3)
    ensure_topics(kafka)
    with LiveApi(kafka, tmp_path_factory.mktemp("logs")) as live:
        yield live.url


@schema.parametrize()
def test_the_live_api_keeps_its_openapi_contract(case: schemathesis.Case, api: str) -> None:
    case.call_and_validate(base_url=api)
