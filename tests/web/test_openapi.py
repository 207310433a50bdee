"""The published OpenAPI document describes the body the parser accepts, from the same constants."""

from __future__ import annotations

import re

from scrypt_helper.core import errors, scrypt_request
from scrypt_helper.core.scrypt_request import MAX_INPUT_BYTES, MIN_INPUT_BYTES
from scrypt_helper_client import request_body
from tests.conftest import SMALL


async def test_the_request_schema_is_generated_from_the_wire_module(app):
    document = (await app.get("/openapi.json")).json()
    body = document["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == scrypt_request.request_json_schema()
    for status in ("400", "401", "403", "413", "415", "429", "503"):
        content = document["paths"]["/"]["post"]["responses"][status]["content"]
        assert content["application/json"]["schema"] == errors.ERROR_JSON_SCHEMA


async def test_the_input_pattern_and_the_parser_agree_on_the_size_limits(app):
    pattern = re.compile(scrypt_request.request_json_schema()["properties"]["input"]["pattern"])
    for size in (MIN_INPUT_BYTES - 1, MIN_INPUT_BYTES, MAX_INPUT_BYTES, MAX_INPUT_BYTES + 1):
        hex_input = "ab" * size
        accepted = (
            await app.post("/", json={**request_body(SMALL, b"\x01"), "input": hex_input})
        ).status_code
        assert (pattern.fullmatch(hex_input) is not None) == (accepted == 200), size
