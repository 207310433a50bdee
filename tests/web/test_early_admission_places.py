"""Early admission keeps a place in the queue for a valid request only, until its job takes it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from scrypt_helper.http.edge import EdgeRefusals
from scrypt_helper.http.protocol import ConnectionLimits, GuardedHttpProtocol, protocol_factory
from scrypt_helper.http.protocol_admission import EarlyAdmission
from scrypt_helper_client import request_body
from tests.conftest import SMALL
from tests.unit.test_whole_responses import RecordingTransport
from tests.web.conftest import AppClient, AppFactory

BODY = json.dumps(request_body(SMALL, b"\x01")).encode()
REQUEST = b"POST / HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def connect(app: AppClient, asgi_app: Any = None) -> tuple[GuardedHttpProtocol, RecordingTransport]:
    config = uvicorn.Config(
        asgi_app or app.app, log_config=None, access_log=False, server_header=False, date_header=False
    )
    config.load()
    edge = EdgeRefusals(app.node.metrics, app.node.summary_log)
    protocol = protocol_factory(ConnectionLimits(5, 10), edge, EarlyAdmission(app.node, edge))(
        config=config, server_state=ServerState(), app_state={}
    )
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def status(transport: RecordingTransport) -> int:
    for _ in range(600):
        if transport.writes:
            return int(transport.writes[0].split(b" ", 2)[1])
        await asyncio.sleep(0.005)
    raise AssertionError("no answer")


async def test_a_valid_request_keeps_its_place_until_its_job_is_queued(make_app: AppFactory):
    app = await make_app(queue_size=0)  # one worker and no waiting room: one place
    reached: list[bytes] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            reached.append(dict(scope["headers"]).get(b"x-request-id", b""))
        await app.app(scope, receive, send)

    first, first_writes = connect(app, recording)
    second, second_writes = connect(app, recording)
    first.data_received(REQUEST.replace(b"\r\n\r\n", b"\r\nX-Request-Id: first\r\n\r\n", 1))
    second.data_received(REQUEST)  # in the same turn: the place is the first's
    assert await status(second_writes) == 503
    assert await status(first_writes) == 200
    assert reached == [b"first"]  # the second was refused by early admission, never by the endpoint
    for protocol in (first, second):
        protocol.connection_lost(None)


async def test_a_client_holding_its_body_back_holds_no_place(make_app: AppFactory):
    app = await make_app(queue_size=0)
    holding, holding_writes = connect(app)
    holding.data_received(REQUEST[: REQUEST.index(b"\r\n\r\n") + 4])  # headers, then nothing
    other, other_writes = connect(app)
    other.data_received(REQUEST)
    assert await status(other_writes) == 200
    assert holding_writes.writes == []
    for protocol in (holding, other):
        protocol.connection_lost(None)


async def test_the_connection_lives_on_after_a_door_answer(make_app: AppFactory):
    app = await make_app()
    protocol, transport = connect(app)
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: node\r\nContent-Length: 2\r\n\r\n{}")
    assert await status(transport) == 400
    transport.writes.clear()
    protocol.data_received(REQUEST)  # the next request on the same connection is served
    assert await status(transport) == 200
    assert not transport.closed
    protocol.connection_lost(None)
