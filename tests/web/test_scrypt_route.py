"""``POST /`` and ``GET /`` in-process: answers, the mapping of every fault to its status and errno."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from scrypt_helper.core.scrypt_request import MAX_INPUT_BYTES
from scrypt_helper.http.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, assert_error
from tests.web.conftest import reference


async def test_answers_match_hashlib_on_random_inputs(app):
    for size in (1, 32, MAX_INPUT_BYTES):
        data = os.urandom(size)
        response = await app.post("/", json=request_body(SMALL, data))
        assert response.status_code == 200
        assert response.json() == {"output": reference(SMALL, data).hex()}
        assert response.headers["cache-control"] == "no-store"


async def test_the_original_clients_digit_strings_and_upper_case_hex(app):
    data = os.urandom(32)
    payload = {**request_body(SMALL, data), "N": str(SMALL.n), "r": "8", "p": "1", "buflen": "32"}
    payload["input"] = payload["input"].upper()
    assert (await app.post("/", json=payload)).json() == {"output": reference(SMALL, data).hex()}


async def test_get_root_is_the_original_health_check(app):
    response = await app.get("/")
    assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.parametrize("key", ["input", "salt", "N", "r", "p", "buflen"])
async def test_missing_key(app, key):
    payload = request_body(SMALL, b"\x01")
    del payload[key]
    assert_error(await app.post("/", json=payload), 400, 108, f"Missing parameter in request body: {key}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("N", 2048),
        ("N", "1024x"),
        ("r", 9),
        ("p", 2),
        ("buflen", 64),
        ("buflen", 32.0),
        ("salt", "wrong salt"),
        ("input", "abc"),
        ("input", "zz"),
        ("input", ""),
        ("input", "00" * (MAX_INPUT_BYTES + 1)),
        ("input", 12),
    ],
)
async def test_invalid_parameter(app, key, value):
    payload = {**request_body(SMALL, b"\x01"), key: value}
    assert_error(await app.post("/", json=payload), 400, 107, f"Invalid parameter in request body: {key}")


@pytest.mark.parametrize(
    "raw", [b"not json", b"{", b"[1, 2]", b'"input"', b"", '{"input": "\u00e9"'.encode("latin-1")]
)
async def test_invalid_json(app, raw):
    assert_error(await app.post("/", content=raw, headers={"content-type": "application/json"}), 400, 106)


async def test_a_body_over_the_limit_is_413_before_it_is_parsed(make_app, engine):
    app = await make_app(max_body_bytes=1024)
    assert_error(
        await app.post("/", content=b"{" * 1025), 413, 113, "Request body too large (limit 1024 bytes)"
    )
    assert engine.hashed == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405_with_allow(app, method):
    response = await app.request(method, "/")
    assert_error(response, 405, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


async def test_unknown_path_is_404(app):
    assert_error(await app.get("/nope"), 404, 404)
    assert_error(await app.post("/nope", json={}), 404, 404)


async def test_full_queue_is_a_503_with_retry_after_and_nothing_is_lost(make_app, engine):
    app = await make_app(workers=1, queue_size=1)  # one worker, room for one more
    engine.gate.clear()
    inputs = [os.urandom(8) for _ in range(2)]
    held = [asyncio.create_task(app.post("/", json=request_body(SMALL, data))) for data in inputs]
    while app.node.scheduler.in_flight + app.node.scheduler.depth < 2:
        await asyncio.sleep(0.01)
    refused = await app.post("/", json=request_body(SMALL, b"\x03"))
    engine.gate.set()
    answers = await asyncio.gather(*held)
    assert_error(refused, 503, 201)
    assert int(refused.headers["retry-after"]) >= 1
    for response, data in zip(answers, inputs, strict=True):
        assert response.json() == {"output": reference(SMALL, data).hex()}


async def test_a_job_that_could_not_start_in_time_is_refused_before_its_body_is_read(make_app, engine):
    # One worker, held; by the start-up estimate a job takes it about 10 s, and jobs may wait 20:
    # one more fits (a worker expected within 0.6 x 20 s), the next is refused when it arrives.
    app = await make_app(workers=1, queue_size=10, max_queue_wait=20.0)
    app.node.scheduler.estimate.hint = 10.0  # as if start-up had timed a slow engine
    engine.gate.clear()
    held = []
    for i in range(2):
        held.append(asyncio.create_task(app.post("/", json=request_body(SMALL, bytes([i])))))
        while app.node.scheduler.in_flight + app.node.scheduler.depth <= i:
            await asyncio.sleep(0.01)
    reads = 0

    async def receive() -> dict[str, object]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    answer: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        answer.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 50001), "server": ("testserver", 80),
    }  # fmt: skip
    await asyncio.wait_for(app.app(scope, receive, send), 5)  # not its 20 s deadline
    assert answer[0]["status"] == 503
    assert b"within the maximum queue wait" in answer[1]["body"]  # type: ignore[operator]
    assert reads == 0
    assert app.node.scheduler.depth == 1
    engine.gate.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]


async def test_a_draining_node_refuses_new_hashes_with_503(app, engine):
    app.node.scheduler.begin_drain()
    assert_error(await app.post("/", json=request_body(SMALL, b"\x01")), 503, 201)
    assert engine.hashed == 0


async def test_an_engine_fault_is_a_bare_500_that_names_nothing(app, engine, caplog):
    caplog.set_level(logging.INFO, logger="request.summary")
    engine.fault = RuntimeError("internal detail that must not leak")
    headers = {"Origin": "https://a.example", "X-Request-Id": "fault"}
    response = await app.post("/", json=request_body(SMALL, b"\x01"), headers=headers)
    assert_error(response, 500, 999)
    assert response.json() == {
        "code": 500,
        "errno": 999,
        "error": "Internal Server Error",
        "message": "Unspecified error",
    }
    assert "internal detail" not in response.text
    # Made inside the middleware, the 500 carries what every other answer does.
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["access-control-allow-origin"] == "*"
    (summary,) = [r for r in caplog.records if r.name == "request.summary" and r.rid == "fault"]
    assert (summary.code, summary.errno) == (500, 999)
    engine.fault = None
    assert (await app.post("/", json=request_body(SMALL, b"\x01"))).status_code == 200  # the worker lives on
