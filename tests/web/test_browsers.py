"""Cross-origin browsers in-process: a POST with ``Origin`` is computed only from an allowed origin,
with a JSON body; a POST without ``Origin`` (a native client) keeps the 2013 behaviour."""

from __future__ import annotations

import json

import pytest

from scrypt_helper_client import request_body
from tests.conftest import SMALL, assert_error
from tests.web.conftest import reference

ORIGIN = "https://accounts.example"
DATA = b"\x01" * 32
BODY = json.dumps(request_body(SMALL, DATA)).encode()
OUTPUT = {"output": reference(SMALL, DATA).hex()}
# What a page can send without a CORS preflight, and other types that are not JSON.
NOT_JSON = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json-seq",
    "application/jsonx",
    "application/json; profile=x",
    "",
]


async def post(app, headers: dict[str, str]):
    return await app.post("/", content=BODY, headers=headers)


@pytest.mark.parametrize("content_type", NOT_JSON)
async def test_a_browser_post_without_a_json_body_is_refused_unhashed(make_app, engine, content_type):
    app = await make_app(cors_origins=ORIGIN)
    response = await post(app, {"Origin": ORIGIN, "Content-Type": content_type})
    assert_error(response, 415, 415, "A request with an Origin must send application/json")
    assert response.headers["access-control-allow-origin"] == ORIGIN  # the page may read why
    assert engine.hashed == 0


async def test_a_browser_post_without_a_content_type_is_refused(make_app, engine):
    app = await make_app(cors_origins=ORIGIN)
    request = app.build_request("POST", "/", content=BODY, headers={"Origin": ORIGIN})
    assert "content-type" not in request.headers
    assert_error(await app.send(request), 415, 415)
    assert engine.hashed == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8"]
)
async def test_a_browser_post_from_an_allowed_origin_with_json_is_computed(make_app, content_type):
    app = await make_app(cors_origins=f"https://other.example, {ORIGIN}")
    response = await post(app, {"Origin": ORIGIN, "Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == OUTPUT


@pytest.mark.parametrize(
    "origin",
    ["https://elsewhere.example", "null", "http://accounts.example", "https://accounts.example.evil"],
)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_a_browser_post_from_another_origin_is_refused_unhashed(make_app, engine, origin, content_type):
    app = await make_app(cors_origins=ORIGIN)
    response = await post(app, {"Origin": origin, "Content-Type": content_type})
    assert_error(response, 403, 403, "Origin not allowed")
    assert "access-control-allow-origin" not in response.headers
    assert engine.hashed == 0


async def test_the_default_lets_any_page_post_json_but_never_a_simple_request(app, engine):
    """``--cors-origins *``: any origin, but only with the JSON body a preflight guards."""
    allowed = await post(app, {"Origin": "https://any.example", "Content-Type": "application/json"})
    assert allowed.json() == OUTPUT
    simple = await post(app, {"Origin": "https://any.example", "Content-Type": "text/plain"})
    assert_error(simple, 415, 415)
    assert engine.hashed == 1


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "application/json"],
)
async def test_native_clients_without_origin_keep_the_2013_behaviour(make_app, content_type):
    app = await make_app(cors_origins=ORIGIN)
    request = app.build_request("POST", "/", content=BODY)
    assert "content-type" not in request.headers
    if content_type is not None:
        request.headers["content-type"] = content_type
    response = await app.send(request)
    assert response.status_code == 200, response.text
    assert response.json() == OUTPUT


async def test_a_refused_browser_post_still_counts_as_a_request(make_app, engine):
    app = await make_app(cors_origins=ORIGIN, rules="request : ip : 2 : 60s : 60s : ban")
    for _ in range(2):
        assert_error(await post(app, {"Origin": "https://elsewhere.example"}), 403, 403)
    assert_error(await post(app, {}), 429, 114)
    assert engine.hashed == 0
