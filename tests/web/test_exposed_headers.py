"""What a cross-origin page may read of an answer: ``Retry-After`` to wait as told, and the request id
that the node's log lines carry, on answers and refusals alike."""

from __future__ import annotations

import json
import logging
import uuid

from scrypt_helper_client import request_body
from tests.conftest import SMALL, assert_error

ORIGIN = "https://accounts.example"
BROWSER = {"Origin": ORIGIN, "Content-Type": "application/json"}


def exposed(response) -> set[str]:
    return {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}


def body(data: bytes) -> bytes:
    return json.dumps(request_body(SMALL, data)).encode()


async def test_a_refusal_lets_the_page_read_retry_after_and_the_request_id(make_app):
    app = await make_app(cors_origins=ORIGIN, rules="scrypt : ip : 1 : 1s : 1s : block")
    assert (await app.post("/", content=body(b"one"), headers=BROWSER)).status_code == 200
    refused = await app.post("/", content=body(b"two"), headers={**BROWSER, "X-Request-Id": "rid-42"})
    assert_error(refused, 429, 114)
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert {"retry-after", "x-request-id"} <= exposed(refused)
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-request-id"] == "rid-42"


async def test_every_answer_names_its_request_id_a_fresh_one_unless_the_client_sent_one(make_app, caplog):
    caplog.set_level(logging.INFO, logger="request.summary")
    app = await make_app(cors_origins=ORIGIN)
    answer = await app.post("/", content=body(b"data"), headers=BROWSER)
    assert answer.status_code == 200
    assert {"retry-after", "x-request-id"} <= exposed(answer)
    rid = answer.headers["x-request-id"]
    assert uuid.UUID(rid)
    assert [r.code for r in caplog.records if r.name == "request.summary" and r.rid == rid] == [200]
    assert (await app.get("/__lbheartbeat__", headers={"X-Request-Id": "probe-1"})).headers[
        "x-request-id"
    ] == "probe-1"


async def test_the_preflight_allows_the_json_post(make_app):
    app = await make_app(cors_origins=ORIGIN)
    preflight = await app.options(
        "/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
