"""The door: refusals of ``POST /`` decided from the headers, answered below ASGI as the endpoint would."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from scrypt_helper.scheduler import Place
from scrypt_helper.web.connection_limits import guarded_protocol
from scrypt_helper.web.door import Door, Pending
from scrypt_helper.web.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper.wire import request_body
from tests.conftest import SMALL, assert_error
from tests.unit.test_whole_responses import RecordingTransport
from tests.web.conftest import PEER, reference

BODY = json.dumps(request_body(SMALL, b"\x01")).encode()


def post(headers: dict[str, str] | None = None, body: bytes = BODY) -> bytes:
    lines = [
        "POST / HTTP/1.1",
        "Host: node",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def raw_headers(request: bytes) -> list[tuple[bytes, bytes]]:
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return [(name.lower(), value) for name, value in (line.split(b": ", 1) for line in head)]


def connect(app, asgi_app=None) -> tuple[Any, RecordingTransport]:
    """uvicorn's protocol as the node runs it, with the door, on a connection that records writes;
    serving ``asgi_app`` (by default the node's app) behind the door."""
    config = uvicorn.Config(
        asgi_app or app.app, log_config=None, access_log=False, server_header=False, date_header=False
    )
    config.load()
    protocol_class = guarded_protocol(read_timeout=5, max_connections=10, door=Door(app.node))
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def hold_the_worker(app, engine) -> asyncio.Task[Any]:
    engine.gate.clear()
    held = asyncio.create_task(app.post("/", json=request_body(SMALL, b"\x02")))
    assert await asyncio.to_thread(engine.started.acquire, True, 5)
    return held


async def test_a_full_queue_is_refused_from_the_headers_as_the_endpoint_refuses_it(make_app, engine, caplog):
    caplog.set_level(logging.INFO, logger="request.summary")
    app = await make_app(queue_size=0)
    held = await hold_the_worker(app, engine)
    door = Door(app.node)
    request = post({"X-Request-Id": "at-the-door"})
    answer = door.refusal(b"POST", b"/", raw_headers(request), PEER[0])
    assert answer is not None
    status, headers, body = parse(answer)
    endpoint = await app.post("/", json=request_body(SMALL, b"\x01"))
    assert_error(endpoint, 503, 201)
    assert status == 503
    assert body == endpoint.content
    assert headers["retry-after"] == endpoint.headers["retry-after"]
    assert int(headers["content-length"]) == len(body)
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value
    (summary,) = [r for r in caplog.records if r.name == "request.summary" and r.rid == "at-the-door"]
    assert (summary.code, summary.errno, summary.reason, summary.path) == (503, 201, "queue_full", "/")
    metrics = (await app.get("/metrics")).text
    assert 'scrypt_helper_requests_total{method="POST",route="/",status="503"} 2.0' in metrics
    assert 'scrypt_helper_rejections_total{reason="queue_full"} 2.0' in metrics
    engine.gate.set()
    await held


async def test_a_client_under_a_block_is_refused_from_memory(make_app):
    app = await make_app(rules="request : ip : 1 : 60s : 30s : block")
    door = Door(app.node)
    request = raw_headers(post())
    assert isinstance(door.refusal(b"POST", b"/", request, PEER[0]), Pending)  # not refused yet
    assert (await app.post("/", json=request_body(SMALL, b"\x01"))).status_code == 200
    assert_error(await app.post("/", json=request_body(SMALL, b"\x01")), 429, 114)
    answer = door.refusal(b"POST", b"/", request, PEER[0])
    assert answer is not None
    status, headers, body = parse(answer)
    assert (status, json.loads(body)["errno"]) == (429, 114)
    assert 1 <= int(headers["retry-after"]) <= 30
    # Another address is not this client.
    assert isinstance(door.refusal(b"POST", b"/", request, "127.0.0.9"), Pending)
    metrics = (await app.get("/metrics")).text
    assert 'scrypt_helper_abuse_decisions_total{policy="block",rule="request:ip:1/60s:block"} 2.0' in metrics


async def test_the_door_steps_aside_where_it_cannot_answer_as_the_endpoint(make_app, engine):
    app = await make_app(queue_size=0)
    door = Door(app.node)
    pending = door.refusal(b"POST", b"/", raw_headers(post()), PEER[0])  # a worker is free
    assert isinstance(pending, Pending)
    place = door.judge_body(pending, BODY)
    assert isinstance(place, Place)  # a valid request: on to the endpoint, its place kept
    app.node.scheduler.let_go(place)  # as the endpoint does, submitting it (the worker is not held)
    held = await hold_the_worker(app, engine)
    assert isinstance(door.refusal(b"POST", b"/", raw_headers(post()), PEER[0]), bytes)
    browser = raw_headers(post({"Origin": "https://a.example"}))
    assert door.refusal(b"POST", b"/", browser, PEER[0]) is None  # its answer needs CORS headers
    keyed = raw_headers(post({"X-API-Key": "0123456789abcdef0123"}))
    assert door.refusal(b"POST", b"/", keyed, PEER[0]) is None  # its key is judged first
    assert door.refusal(b"GET", b"/", raw_headers(post()), PEER[0]) is None
    assert door.refusal(b"POST", b"/other", raw_headers(post()), PEER[0]) is None
    engine.gate.set()
    await held


async def test_the_connection_lives_on_after_an_answer_from_the_door(make_app, engine):
    app = await make_app(queue_size=0)
    held = await hold_the_worker(app, engine)
    protocol, transport = connect(app)
    request = post()
    head, body = request.split(b"\r\n\r\n")
    protocol.data_received(head + b"\r\n\r\n")  # the body has not come yet: answered all the same
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(transport.writes) == 1
    assert parse(transport.writes[0])[0] == 503
    protocol.data_received(body)  # dropped unread
    engine.gate.set()
    await held
    while app.node.scheduler.in_flight:
        await asyncio.sleep(0.01)
    transport.writes.clear()
    protocol.data_received(post(body=b"{}"))  # the next request on the connection reaches the app
    for _ in range(200):
        await asyncio.sleep(0.005)
        if transport.writes:
            break
    status, _, answer = parse(transport.writes[0])
    assert (status, json.loads(answer)["errno"]) == (400, 108)
    protocol.connection_lost(None)


async def test_bad_bodies_and_big_ones_are_refused_as_the_endpoint_refuses_them(app):
    door = Door(app.node)
    for body in (b"{}", b"[1,", json.dumps({**request_body(SMALL, b"\x01"), "N": 2}).encode()):
        pending = door.refusal(b"POST", b"/", raw_headers(post(body=body)), PEER[0])
        assert isinstance(pending, Pending)
        answer = door.judge_body(pending, body)
        assert answer is not None
        status, _, content = parse(answer)
        endpoint = await app.post("/", content=body)
        assert (status, content) == (endpoint.status_code, endpoint.content)
        assert status == 400
    big = post(body=b"x" * 5000)
    status, _, content = parse(door.refusal(b"POST", b"/", raw_headers(big), PEER[0]))  # type: ignore[arg-type]
    assert (status, json.loads(content)["errno"]) == (413, 113)


async def test_refusals_at_the_door_count_against_the_request_rules(make_app):
    app = await make_app(rules="request : ip : 2 : 60s : 60s : block")
    door = Door(app.node)
    for _ in range(3):
        pending = door.refusal(b"POST", b"/", raw_headers(post(body=b"{}")), PEER[0])
        assert isinstance(pending, Pending)
        assert parse(door.judge_body(pending, b"{}"))[0] == 400  # type: ignore[arg-type]
    # The counts run just after the answers; the third trips the rule: the client is then
    # blocked, at the door and at the endpoint.
    for _ in range(500):
        answer = door.refusal(b"POST", b"/", raw_headers(post()), PEER[0])
        if isinstance(answer, bytes):
            break
        await asyncio.sleep(0.01)
    assert isinstance(answer, bytes)
    assert parse(answer)[0] == 429
    assert_error(await app.post("/", json=request_body(SMALL, b"\x01")), 429, 114)


async def test_a_valid_request_the_door_held_is_served_whole(make_app):
    app = await make_app()
    protocol, transport = connect(app)
    request = post()
    protocol.data_received(request[:-10])  # the body comes in two pieces
    protocol.data_received(request[-10:])
    for _ in range(400):
        await asyncio.sleep(0.005)
        if transport.writes:
            break
    status, _, answer = parse(transport.writes[0])
    assert status == 200
    assert json.loads(answer) == {"output": reference(SMALL, b"\x01").hex()}
    protocol.connection_lost(None)


async def answers(transport: RecordingTransport) -> int:
    """The status of the first answer written on ``transport``, waiting up to two seconds for it."""
    for _ in range(400):
        if transport.writes:
            return parse(transport.writes[0])[0]
        await asyncio.sleep(0.005)
    raise AssertionError("no answer")


async def test_a_valid_request_keeps_its_place_until_its_job_is_queued(make_app):
    app = await make_app(queue_size=0)  # one worker and no waiting room: one place
    reached: list[bytes] = []

    async def recording(scope, receive, send) -> None:
        reached.append(dict(scope["headers"]).get(b"x-request-id", b""))
        await app.app(scope, receive, send)

    request = post({"X-Request-Id": "first"})
    first, first_writes = connect(app, recording)
    second, second_writes = connect(app, recording)
    first.data_received(request)  # valid: its place is kept while it goes on to the endpoint
    second.data_received(post({"X-Request-Id": "second"}))  # in the same turn: no place left
    assert await answers(second_writes) == 503
    assert await answers(first_writes) == 200
    assert reached == [b"first"]  # the second was refused at the door, never by the endpoint
    for protocol in (first, second):
        protocol.connection_lost(None)


async def test_a_client_holding_its_body_back_holds_no_place(make_app):
    app = await make_app(queue_size=0)
    head, _ = post().split(b"\r\n\r\n")
    holding, holding_writes = connect(app)
    holding.data_received(head + b"\r\n\r\n")  # headers, then nothing
    other, other_writes = connect(app)
    other.data_received(post())
    assert await answers(other_writes) == 200
    assert holding_writes.writes == []
    for protocol in (holding, other):
        protocol.connection_lost(None)
