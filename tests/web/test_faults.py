"""FaultMiddleware: a fault before the answer is the JSON 500, after it is left alone; on both ports."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from scrypt_helper.http.app import create_metrics_app
from scrypt_helper.http.middleware.faults import FaultMiddleware
from scrypt_helper.http.middleware.security_headers import SECURITY_HEADERS


class Boom(Exception):
    """A fault whose text must never reach the client."""


async def fails_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    raise Boom("secret detail")


async def fails_midway(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise Boom("secret detail")


async def answers(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def recording(app):
    """The middleware around ``app``, keeping the last scope and what it raised."""
    seen: dict[str, object] = {}
    middleware = FaultMiddleware(app)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        seen["scope"] = scope
        try:
            await middleware(scope, receive, send)
        except Exception as exc:
            seen["raised"] = exc
            raise

    return outer, seen


async def call(app) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/")


async def test_a_fault_before_the_answer_is_the_json_500_and_is_raised_on():
    app, seen = recording(fails_at_once)
    response = await call(app)
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "code": 500,
        "errno": 999,
        "error": "Internal Server Error",
        "message": "Unspecified error",
    }
    assert "secret" not in response.text
    assert seen["scope"]["state"]["errno"] == 999  # for the request summary
    assert isinstance(seen["raised"], Boom)  # for the server's traceback log


async def test_a_fault_after_the_answer_began_sends_nothing_more():
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with pytest.raises(Boom):
        await FaultMiddleware(fails_midway)(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert "errno" not in scope.get("state", {})


async def test_answers_and_other_scopes_pass_through():
    app, seen = recording(answers)
    assert (await call(app)).status_code == 204
    assert "raised" not in seen
    lifespan_seen = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        lifespan_seen.append(scope["type"])

    await FaultMiddleware(lifespan_app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert lifespan_seen == ["lifespan"]


async def test_the_private_metrics_port_answers_with_the_same_headers_and_500(make_app):
    app = await make_app(metrics_port=0)
    metrics_app = create_metrics_app(app.node)
    transport = httpx.ASGITransport(app=metrics_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        answers = [await client.get("/metrics"), await client.get("/__lbheartbeat__")]
        metrics_app.state.node = None  # every route now fails on the node
        fault = await client.get("/metrics")
    for response in [*answers, fault]:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
    assert [response.status_code for response in answers] == [200, 200]
    assert fault.status_code == 500
    assert fault.json()["errno"] == 999
