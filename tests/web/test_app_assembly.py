"""How the app is put together: middleware order, headers on every response, CORS, metrics, the log line."""

from __future__ import annotations

import logging

import pytest

from scrypt_helper.http.dependencies import get_node
from scrypt_helper.http.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper_client import request_body
from tests.conftest import SMALL

ORIGIN = "https://accounts.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def assert_security_headers(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name


async def test_security_headers_on_answers_errors_and_preflights(app):
    for response in (
        await app.get("/"),
        await app.post("/", json=request_body(SMALL, b"\x01")),
        await app.post("/", content=b"{}"),
        await app.get("/nope"),
        await app.put("/"),
        await app.options("/", headers=PREFLIGHT),  # answered by CORS, inside the headers middleware
        await app.get("/__lbheartbeat__"),
    ):
        assert_security_headers(response)


async def test_cors_preflight_and_post_from_a_browser(app):
    preflight = await app.options("/", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    response = await app.post("/", json=request_body(SMALL, b"\x01"), headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    refused = await app.post("/", content=b"[]", headers={"Origin": ORIGIN})
    assert refused.headers["access-control-allow-origin"] == "*"  # a browser may read the error too


async def test_cors_origins_are_configurable(make_app):
    app = await make_app(cors_origins=ORIGIN)
    allowed = await app.options("/", headers=PREFLIGHT)
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = await app.options("/", headers={**PREFLIGHT, "Origin": "https://elsewhere.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


async def test_metrics_count_every_request_by_route_template_even_preflights(app):
    await app.post("/", json=request_body(SMALL, b"\x02"))
    await app.post("/", content=b"[]")
    await app.get("/nope")
    await app.options("/", headers=PREFLIGHT)
    text = (await app.get("/metrics")).text
    for series in (
        'scrypt_helper_requests_total{method="POST",route="/",status="200"} 1.0',
        'scrypt_helper_requests_total{method="POST",route="/",status="400"} 1.0',
        'scrypt_helper_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        'scrypt_helper_requests_total{method="OPTIONS",route="unmatched",status="200"} 1.0',
        "scrypt_helper_hash_duration_seconds_count 1.0",
        "scrypt_helper_batch_size_count 1.0",
    ):
        assert series in text, series


async def test_metrics_move_to_the_private_port_when_one_is_set(make_app):
    app = await make_app(metrics_port=0)
    assert (await app.get("/metrics")).status_code == 404


async def test_the_summary_line_carries_errno_and_timings_inside_the_request_id(app, caplog):
    caplog.set_level(logging.INFO, logger="request.summary")
    await app.post("/", json=request_body(SMALL, b"\x01"), headers={"X-Request-Id": "rid-answer"})
    await app.post("/", content=b"[]", headers={"X-Request-Id": "rid-refusal"})
    await app.get("/nope")
    summaries = {record.rid: record for record in caplog.records if record.name == "request.summary"}
    answered, refused = summaries["rid-answer"], summaries["rid-refusal"]
    assert (answered.code, answered.errno, answered.batch) == (200, 0, 1)
    assert answered.hash_ms >= 0
    assert answered.queue_ms >= 0
    assert (refused.code, refused.errno) == (400, 106)
    assert [r.errno for r in summaries.values() if r.path == "/nope"] == [404]


async def test_every_route_reads_the_node_through_one_overridable_dependency(make_app):
    app = await make_app()
    draining = await make_app()
    draining.node.draining = True
    app.app.dependency_overrides[get_node] = lambda: draining.node
    assert (await app.get("/__lbheartbeat__")).status_code == 503
    app.app.dependency_overrides.clear()
    assert (await app.get("/__lbheartbeat__")).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_no_interactive_docs_are_served(app, path):
    assert (await app.get(path)).status_code == 404
