"""One table of decisions on ``POST /``, and both of its callers held to it: early admission (uvicorn's
protocol with early admission, on a connection that records its writes) and the endpoint (the app
through ASGI, with no protocol before it). Each answer carries the same headers either way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from scrypt_helper.http.answers import SECURITY_HEADERS
from scrypt_helper.http.edge import EdgeRefusals
from scrypt_helper.http.protocol import ConnectionLimits, protocol_factory
from scrypt_helper.http.protocol_admission import EarlyAdmission
from scrypt_helper_client import request_body
from tests.conftest import SMALL
from tests.unit.test_whole_responses import RecordingTransport
from tests.web.conftest import AppClient, AppFactory, ControlledEngine, reference

BODY = json.dumps(request_body(SMALL, b"\x01")).encode()
KEY = "0123456789abcdef0123"
EVERY_ANSWER = {*(name.lower() for name in SECURITY_HEADERS), "date", "vary", "x-request-id", "content-type"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def errno(self) -> int:
        return int(json.loads(self.body)["errno"]) if self.status != 200 else 0


Caller = Callable[[AppClient, dict[str, str], bytes], Awaitable[Answer]]


async def through_early_admission(app: AppClient, headers: dict[str, str], body: bytes) -> Answer:
    """The request as raw bytes into the node's protocol, with early admission; its first answer."""
    config = uvicorn.Config(
        app.app, log_config=None, access_log=False, server_header=False, date_header=False
    )
    config.load()
    edge = EdgeRefusals(app.node.metrics, app.node.summary_log)
    make = protocol_factory(ConnectionLimits(5, 10), edge, EarlyAdmission(app.node, edge))
    protocol = make(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    lines = [
        "POST / HTTP/1.1",
        "Host: node",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    protocol.data_received(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    try:
        for _ in range(600):
            if transport.writes:
                return parse(b"".join(transport.writes))
            await asyncio.sleep(0.005)
        raise AssertionError("no answer")
    finally:
        protocol.connection_lost(None)


async def through_asgi(app: AppClient, headers: dict[str, str], body: bytes) -> Answer:
    response = await app.post("/", content=body, headers=headers)
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def parse(raw: bytes) -> Answer:
    head, body = raw.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body)


@dataclass(frozen=True)
class Decision:
    """A request, the node it meets, and the answer the judgement gives it."""

    name: str
    status: int
    errno: int
    settings: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = BODY
    before: Callable[[AppClient, ControlledEngine], Awaitable[None]] | None = None
    reason: str | None = None  # in the summary line


async def hash_once(app: AppClient, engine: ControlledEngine) -> None:
    assert (await app.post("/", content=BODY)).status_code == 200


async def hash_twice(app: AppClient, engine: ControlledEngine) -> None:
    await hash_once(app, engine)
    assert (await app.post("/", content=BODY)).status_code == 429  # the rule trips: blocked


async def hold_the_worker(app: AppClient, engine: ControlledEngine) -> None:
    engine.gate.clear()
    asyncio.get_running_loop().create_task(app.post("/", content=BODY))
    assert await asyncio.to_thread(engine.started.acquire, True, 5)


SCRYPT_BLOCK = "scrypt : ip : 1 : 60s : 30s : block"
DECISIONS = [
    Decision("valid", 200, 0),
    Decision("missing-parameter", 400, 108, body=b"{}"),
    Decision("not-json", 400, 106, body=b"[1,"),
    Decision("parameters-not-allowed", 400, 107, body=json.dumps({**json.loads(BODY), "N": 2}).encode()),
    Decision("declared-too-large", 413, 113, body=b"x" * 5000),
    Decision("denied", 403, 125, settings={"denylist": "127.0.0.0/8"}),
    Decision("unknown-key", 401, 110, headers={"X-API-Key": "f" * 20}),
    Decision("known-key", 200, 0, settings={"api_keys": f"ops:{KEY}"}, headers={"X-API-Key": KEY}),
    Decision(
        "origin-not-allowed",
        403,
        403,
        settings={"cors_origins": "https://app.example"},
        headers={"Origin": "https://evil.example", "Content-Type": "application/json"},
    ),
    Decision(
        "browser-not-json",
        415,
        415,
        settings={"cors_origins": "https://app.example"},
        headers={"Origin": "https://app.example", "Content-Type": "text/plain"},
    ),
    Decision(
        "browser",
        200,
        0,
        settings={"cors_origins": "https://app.example"},
        headers={"Origin": "https://app.example", "Content-Type": "application/json"},
    ),
    Decision(
        "request-rule",
        429,
        114,
        settings={"rules": "request : ip : 1 : 60s : 30s : block"},
        before=hash_once,
        reason="request:ip:1/60s:block",
    ),
    Decision(
        "scrypt-block-in-force",
        429,
        114,
        settings={"rules": SCRYPT_BLOCK},
        before=hash_twice,
        reason="scrypt:ip:1/60s:block",
    ),
    Decision("queue-full", 503, 201, settings={"queue_size": 0}, before=hold_the_worker, reason="queue_full"),
]
CALLERS = {"early_admission": through_early_admission, "endpoint": through_asgi}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("decision", DECISIONS, ids=[d.name for d in DECISIONS])
async def test_both_callers_give_each_decision(
    make_app: AppFactory, engine: ControlledEngine, caplog, decision: Decision, caller: str
):
    caplog.set_level("INFO", logger="request.summary")
    app = await make_app(**decision.settings)
    if decision.before is not None:
        await decision.before(app, engine)
    rid = f"{decision.name}.{caller}"
    answer = await CALLERS[caller](app, {**decision.headers, "X-Request-Id": rid}, decision.body)
    engine.gate.set()
    assert (answer.status, answer.errno) == (decision.status, decision.errno), answer.body
    assert set(answer.headers) >= EVERY_ANSWER
    assert answer.headers["x-request-id"] == rid
    assert answer.headers["vary"] == "Origin"
    assert int(answer.headers["content-length"]) == len(answer.body)
    if answer.status == 200:
        assert json.loads(answer.body) == {"output": reference(SMALL, b"\x01").hex()}
    if "Origin" in decision.headers:
        assert answer.headers["access-control-expose-headers"] == "Retry-After, X-Request-Id"
        allowed = decision.headers["Origin"] in decision.settings.get("cors_origins", "")
        assert answer.headers.get("access-control-allow-origin") == (
            decision.headers["Origin"] if allowed else None
        )
    (summary,) = [r for r in caplog.records if r.name == "request.summary" and r.rid == rid]
    assert (summary.code, getattr(summary, "errno", 0), getattr(summary, "reason", None)) == (
        decision.status,
        decision.errno,
        decision.reason,
    )


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("sent", ["", "a b", "x" * 129, "ünïcode", "a\tb"])
async def test_an_ill_formed_request_id_is_replaced_by_a_fresh_one(app: AppClient, caller: str, sent: str):
    answer = await CALLERS[caller](app, {"X-Request-Id": sent} if sent.isascii() else {}, b"{}")
    assert answer.status == 400
    assert answer.headers["x-request-id"] != sent
    assert len(answer.headers["x-request-id"]) == 36  # a fresh UUID
