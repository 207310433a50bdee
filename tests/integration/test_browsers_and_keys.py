"""Browsers' cross-origin POSTs and API-key guessing against a real node over real HTTP.

Each test's clients bind addresses of their own (Linux routes all of 127/8 to loopback), so the
node counts each as a different client.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator

import httpx
import pytest

from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.tls import http_get, shared_tls
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, assert_error, local_node

ORIGIN = "https://accounts.example"
API_KEY = "integration-key-0123456789"
RULES = "bad_key : ip : 3 : 60s : 60s : block; request : ip : 20 : 60s : 60s : ban"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalServer]:
    with local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        cors_origins=ORIGIN,
        api_keys=f"partner:{API_KEY}",
        rules=RULES,
    ) as running:
        yield running


def client_from(node: LocalServer, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=node.url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=address, verify=shared_tls()),
    )


def hashes_answered(node: LocalServer) -> float:
    text = http_get(node.url + "/metrics", timeout=5).text
    match = re.search(r"^scrypt_helper_hash_duration_seconds_count (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_pages_elsewhere_cannot_make_browsers_hash(node):
    data = os.urandom(32)
    body = json.dumps(request_body(SMALL, data))
    output = hashlib.scrypt(data, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen).hex()
    before = hashes_answered(node)
    with client_from(node, "127.0.10.1") as browser:
        # What any page can make a browser send without a preflight: never hashed.
        for origin, status in (("https://elsewhere.example", 403), (ORIGIN, 415)):
            for content_type in ("text/plain", "application/x-www-form-urlencoded"):
                headers = {"Origin": origin, "Content-Type": content_type}
                assert_error(browser.post("/", content=body, headers=headers), status, status)
        assert_error(
            browser.post(
                "/",
                content=body,
                headers={"Origin": "https://elsewhere.example", "Content-Type": "application/json"},
            ),
            403,
            403,
        )
        # The allowed page: its preflight, then its JSON POST.
        preflight = browser.options(
            "/",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        allowed = browser.post(
            "/", content=body, headers={"Origin": ORIGIN, "Content-Type": "application/json"}
        )
        assert allowed.json() == {"output": output}
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
    with client_from(node, "127.0.10.2") as native:
        # curl -d: form-urlencoded and no Origin, read as JSON as in 2013.
        curl = native.post("/", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert curl.json() == {"output": output}
    assert hashes_answered(node) - before == 2


def test_guessing_keys_blocks_the_address_from_every_key(node):
    body = request_body(SMALL, b"\x02")
    with client_from(node, "127.0.11.1") as guesser, client_from(node, "127.0.12.1") as partner:
        for guess in range(3):
            wrong = guesser.post("/", json=body, headers={"X-API-Key": f"guess-{guess:016d}"})
            assert_error(wrong, 401, 110)
        assert_error(guesser.post("/", json=body, headers={"X-API-Key": "guess-0000000000000003"}), 429, 114)
        # Even the right key: guessing on teaches nothing.
        assert_error(guesser.post("/", json=body, headers={"X-API-Key": API_KEY}), 429, 114)
        # The address's keyless requests, and the key from elsewhere, go on.
        assert guesser.post("/", json=body).status_code == 200
        assert partner.post("/", json=body, headers={"X-API-Key": API_KEY}).status_code == 200


def test_a_valid_key_does_not_lift_an_address_ban(node):
    with client_from(node, "127.0.13.1") as banned, client_from(node, "127.0.14.1") as other:
        assert [banned.get("/").status_code for _ in range(20)] == [200] * 20
        assert_error(banned.get("/"), 429, 114)
        keyed = {"X-API-Key": API_KEY}
        assert_error(banned.get("/", headers=keyed), 429, 114)
        assert_error(banned.post("/", json=request_body(SMALL, b"\x03"), headers=keyed), 429, 114)
        assert other.get("/", headers=keyed).status_code == 200
