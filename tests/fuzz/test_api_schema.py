"""The running API fuzzed from its own OpenAPI schema: no input gives a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import SMALL, allowed_json, local_node


@pytest.fixture(scope="module")
def api_schema():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), queue_size=64) as node:
        yield schemathesis.openapi.from_url(node.url + "/openapi.json")


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gives_a_server_error(api_schema, mode):
    ops = operations(api_schema)
    assert {(op.method.upper(), op.path) for op in ops} >= {("POST", "/"), ("GET", "/__heartbeat__")}
    for operation in ops:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to make invalid in a request without parameters or body

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=10)
            assert response.status_code < 500, (case.body, response.text)
            if response.status_code >= 400:
                assert {"code", "errno", "error", "message"} <= set(response.json())

        check()
