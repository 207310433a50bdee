"""The API over real HTTP against a real node and engine: what only a real server shows (the production
engine's answers, a streamed body, the server's own headers, concurrency). Validation, error mapping and
answers against hashlib are tested in-process in tests/web."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import httpx
import pytest

from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper.engines.vectors import PICL, PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, assert_error


def post(server, payload: object, **kwargs: object) -> httpx.Response:
    if not isinstance(payload, dict):
        return http_post(server.url + "/", content=payload, timeout=30, **kwargs)
    return http_post(server.url + "/", json=payload, timeout=30, **kwargs)


@pytest.mark.parametrize("vector", PICL, ids=["known-1", "known-2"])
def test_known_answers(server, vector):
    response = post(server, request_body(PICL_PARAMS, vector.password))
    assert response.status_code == 200
    assert response.json() == {"output": vector.output.hex()}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_oversized_body_is_413_whether_declared_or_streamed(server):
    big = json.dumps({**request_body(SMALL, b"\x01"), "pad": "x" * 5000}).encode()
    assert_error(post(server, big), 413, 113)

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    assert_error(post(server, chunks()), 413, 113)


def test_security_headers_and_no_server_banner(server):
    for response in (
        http_get(server.url + "/"),
        post(server, b"{}"),
        post(server, request_body(SMALL, b"\x01")),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers


async def test_many_concurrent_clients_all_get_their_own_answer(server):
    inputs = [os.urandom(16) for _ in range(40)]

    async def one(address: str, data: bytes) -> str:
        # Each from its own loopback address, as many clients would be (one address may hold only
        # --max-connections-per-client connections).
        transport = httpx.AsyncHTTPTransport(local_address=address, verify=shared_tls())
        async with httpx.AsyncClient(base_url=server.url, timeout=30, transport=transport) as client:
            response = await client.post("/", json=request_body(SMALL, data))
        assert response.status_code == 200
        return response.json()["output"]

    outputs = await asyncio.gather(*(one(f"127.0.1.{n + 1}", data) for n, data in enumerate(inputs)))
    expected = [
        hashlib.scrypt(d, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen).hex()
        for d in inputs
    ]
    assert outputs == expected
