"""Hostile bodies and connection floods against a real node: each gets a clear answer in the error
shape, with the security headers, and none of them holds up a health check."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest

from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.tls import http_post, shared_tls
from scrypt_helper.http.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, assert_error, local_node

LIMIT = 1 << 20  # the largest --max-body-bytes: hostile bodies as large as any node accepts
VALID = httpx.Request("POST", "/", json=request_body(SMALL, b"\x01")).read().decode()
# The review's body: a UTF-16-LE U+0222 is the bytes 22 02, a '"' to a byte-level scan.
JSON = {"Content-Type": "application/json"}
REVIEW_UTF16 = '{"input": "\u0222"}'.encode("utf-16-le")


def review_body(size: int) -> bytes:
    """One '"' and then '\\"' repeated: a string that never closes."""
    return b'"' + b'\\"' * ((size - 1) // 2)


@pytest.fixture(scope="module")
def node() -> Iterator[LocalServer]:
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), max_body_bytes=LIMIT) as server:
        yield server


def assert_protected(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["cache-control"] == "no-store"


def post(node: LocalServer, body: bytes) -> httpx.Response:
    return http_post(node.url + "/", content=body, headers=JSON, timeout=30)


def test_the_reviews_utf16_body_is_a_400_with_the_security_headers(node):
    response = post(node, REVIEW_UTF16)
    assert_error(response, 400, 106)
    assert_protected(response)


@pytest.mark.parametrize(
    "body",
    [
        VALID.encode("utf-16-le"),
        VALID.encode("utf-16"),
        VALID.encode("utf-16-be"),
        VALID.encode("utf-32"),
        VALID.encode("utf-32-le"),
        VALID.encode()[:-1] + b', "x": "\xff"}',
        VALID.encode() + b"\x80",
        b"\xc0\xaf",
    ],
    ids=["utf16le", "utf16-bom", "utf16be", "utf32-bom", "utf32le", "stray-byte", "trailing", "overlong"],
)
def test_a_body_that_is_not_utf8_is_106(node, body):
    response = post(node, body)
    assert_error(response, 400, 106)
    assert_protected(response)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "JSON nested too deeply"),
        (b'{"input": ' + b"[" * 100_000, "JSON nested too deeply"),
        (b"[" * 100_000, "Request body must be a JSON object"),
    ],
    ids=["in-an-unknown-key", "in-input", "at-the-top"],
)
def test_nesting_100000_deep_is_106(node, body, message):
    response = post(node, body)
    assert_error(response, 400, 106, message)
    assert_protected(response)


async def test_20_of_the_largest_review_bodies_at_once_are_106_and_health_checks_are_answered(node):
    body = review_body(LIMIT)
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=node.url, timeout=30, limits=limits, verify=shared_tls()) as client:
        answers = await asyncio.gather(
            *(client.post("/", content=body, headers=JSON) for _ in range(20)),
            client.get("/__lbheartbeat__"),
        )
    *refusals, heartbeat = answers
    for response in refusals:
        assert_error(response, 400, 106)
    assert heartbeat.status_code == 200
    assert_protected(heartbeat)
    assert post(node, VALID.encode()).status_code == 200


def test_the_connection_cap_503_carries_the_security_headers_too():
    # One process: several would each take a share of the 4, and the held ones might not fill every share.
    flags = {"trusted_proxies": 1, "max_connections": 4, "read_timeout": 30, "processes": 1}
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), **flags) as server:
        held = []
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
            held.append(sock)
        try:
            response = http_post(server.url + "/", json=request_body(SMALL, b"\x01"), timeout=10)
            assert_error(response, 503, 201)
            assert response.headers["retry-after"] == "1"
            assert_protected(response)
        finally:
            for sock in held:
                sock.close()
