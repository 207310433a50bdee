"""The API over real HTTP against a real node: answers, every class of bad input, headers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import httpx
import pytest

from scrypt_helper.engines.vectors import PICL, PICL_PARAMS
from scrypt_helper.protocol import request_body
from tests.conftest import SMALL


def post(server, payload: object, **kwargs: object) -> httpx.Response:
    if not isinstance(payload, dict):
        return httpx.post(server.url + "/", content=payload, timeout=30, **kwargs)
    return httpx.post(server.url + "/", json=payload, timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, errno: int, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"code", "errno", "error", "message"}
    assert (document["code"], document["errno"]) == (status, errno)
    if message is not None:
        assert document["message"] == message


@pytest.mark.parametrize("vector", PICL, ids=["known-1", "known-2"])
def test_known_answers(server, vector):
    response = post(server, request_body(PICL_PARAMS, vector.password))
    assert response.status_code == 200
    assert response.json() == {"output": vector.output.hex()}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_original_clients_form_with_digit_strings_and_upper_case_hex(server):
    vector = PICL[1]
    payload = {**request_body(PICL_PARAMS, vector.password), "N": "65536", "r": "8", "p": "1", "buflen": "32"}
    payload["input"] = payload["input"].upper()
    assert post(server, payload).json()["output"] == vector.output.hex()


def test_random_inputs_match_hashlib(server):
    for size in (1, 32, 256):
        data = os.urandom(size)
        expected = hashlib.scrypt(data, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen)
        assert post(server, request_body(SMALL, data)).json() == {"output": expected.hex()}


def test_get_root_is_the_original_health_check(server):
    response = httpx.get(server.url + "/")
    assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.parametrize("key", ["input", "salt", "N", "r", "p", "buflen"])
def test_missing_key(server, key):
    payload = request_body(SMALL, b"\x01")
    del payload[key]
    assert_error(post(server, payload), 400, 108, f"Missing parameter in request body: {key}")


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
        ("input", "00" * 257),
        ("input", 12),
    ],
)
def test_invalid_parameter(server, key, value):
    payload = {**request_body(SMALL, b"\x01"), key: value}
    assert_error(post(server, payload), 400, 107, f"Invalid parameter in request body: {key}")


@pytest.mark.parametrize(
    "raw", [b"not json", b"{", b"[1, 2]", b'"input"', b"", '{"input": "\u00e9"'.encode("latin-1")]
)
def test_invalid_json(server, raw):
    assert_error(post(server, raw, headers={"content-type": "application/json"}), 400, 106)


def test_oversized_body_is_413_whether_declared_or_streamed(server):
    big = json.dumps({**request_body(SMALL, b"\x01"), "pad": "x" * 5000}).encode()
    assert_error(post(server, big), 413, 113)

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    assert_error(post(server, chunks()), 413, 113)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(server, method):
    response = httpx.request(method, server.url + "/")
    assert_error(response, 405, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_unknown_path_is_404(server):
    assert_error(httpx.get(server.url + "/nope"), 404, 404)
    assert_error(httpx.post(server.url + "/nope", json={}), 404, 404)


def test_security_headers_and_no_server_banner(server):
    for response in (
        httpx.get(server.url + "/"),
        post(server, b"{}"),
        post(server, request_body(SMALL, b"\x01")),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers


def test_cors_preflight_and_post_from_a_browser(server):
    origin = "https://accounts.example"
    preflight = httpx.options(
        server.url + "/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    response = post(server, request_body(SMALL, b"\x01"), headers={"Origin": origin})
    assert response.headers["access-control-allow-origin"] == "*"


def test_dockerflow_endpoints(server):
    assert httpx.get(server.url + "/__lbheartbeat__").status_code == 200
    heartbeat = httpx.get(server.url + "/__heartbeat__")
    assert heartbeat.status_code == 200
    document = heartbeat.json()
    assert document["status"] == "ok"
    assert set(document["checks"]) == {"workers", "queue"}
    node = document["details"]["node"]
    assert node["workers"] >= 1
    assert node["lanes"] >= 1
    assert node["queue_size"] >= 1
    version = httpx.get(server.url + "/__version__").json()
    assert {"source", "version", "commit", "build"} <= set(version)


def test_metrics_count_requests_and_hashes(server):
    post(server, request_body(SMALL, b"\x02"))
    post(server, b"[]")
    text = httpx.get(server.url + "/metrics").text
    assert 'scrypt_helper_requests_total{method="POST",route="/",status="200"}' in text
    assert 'scrypt_helper_requests_total{method="POST",route="/",status="400"}' in text
    for name in (
        "scrypt_helper_hash_duration_seconds_count",
        "scrypt_helper_queue_wait_seconds_count",
        "scrypt_helper_batch_size_count",
        "scrypt_helper_queue_depth",
        "scrypt_helper_in_flight",
        "scrypt_helper_workers",
        "scrypt_helper_engine_info",
    ):
        assert name in text


async def test_many_concurrent_clients_all_get_their_own_answer(server):
    inputs = [os.urandom(16) for _ in range(40)]

    async def one(client: httpx.AsyncClient, data: bytes) -> str:
        response = await client.post("/", json=request_body(SMALL, data))
        assert response.status_code == 200
        return response.json()["output"]

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        outputs = await asyncio.gather(*(one(client, data) for data in inputs))
    expected = [
        hashlib.scrypt(d, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen).hex()
        for d in inputs
    ]
    assert outputs == expected
