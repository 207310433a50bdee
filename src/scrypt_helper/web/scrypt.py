"""The 2013 service's endpoint, ``/``: ``POST`` computes scrypt, ``GET`` answers "OK".

This is the node's hot path, and under a flood most of its answers are refusals. So it is a
pure-ASGI app placed in front of the routers, the innermost middleware: every answer still
passes the request id, summary log, metrics, security headers, CORS and fault layers, but
none pays for FastAPI's routing, dependency resolution and request objects, which cost more
than all those layers together. It reads the headers it needs in one pass, refuses what it
can before reading a body (a blocked client, a browser's bad origin, a full queue), and
writes its answers as raw ASGI messages. Every other path goes on to the routers.
``describe`` adds ``/`` to the OpenAPI document that FastAPI makes of the routers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper import errors, wire
from scrypt_helper.abuse import ApiKeys, ClientIdentity, TrustedProxies
from scrypt_helper.abuse.identity import API_KEY_HEADER, PrefixLengths
from scrypt_helper.config import Settings
from scrypt_helper.errors import ApiError
from scrypt_helper.node import Node
from scrypt_helper.scheduler import Place, Rejected

T = TypeVar("T")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its answer
ALLOWED_METHODS = "GET, HEAD, OPTIONS, POST"  # OPTIONS: a browser's preflight, answered by CORS


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What the middleware reads of a matched route (``scope["route"]``): its path template."""

    path: str


ROUTE = RouteTemplate("/")
# In a request's ``scope["state"]``: the ``Place`` the door kept for its job (``Scheduler.promise``).
PROMISED = "scrypt_helper.promised"
API_KEY = API_KEY_HEADER.lower().encode()
JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]


class ClientGone(Exception):
    """The client disconnected before its hash was done."""


@dataclass(slots=True)
class RequestHeaders:
    """The few request headers ``/`` reads, found in one pass over the ASGI header list."""

    content_length: bytes | None = None
    content_type: bytes | None = None
    origin: bytes | None = None
    api_key: bytes | None = None
    forwarded_for: list[str] = field(default_factory=list)  # every line, in order
    # For the summary line of a request the door answers itself:
    request_id: bytes | None = None
    user_agent: bytes | None = None
    accept_language: bytes | None = None

    @classmethod
    def read(cls, raw: Sequence[tuple[bytes, bytes]]) -> RequestHeaders:
        found = cls()
        for name, value in raw:  # ASGI servers give lower-case names
            if name == b"content-length":
                found.content_length = value
            elif name == b"content-type":
                found.content_type = value
            elif name == b"origin":
                found.origin = value
            elif name == b"x-forwarded-for":
                found.forwarded_for.append(value.decode("latin-1"))
            elif name == API_KEY:
                found.api_key = value
            elif name == b"x-request-id":
                found.request_id = value
            elif name == b"user-agent":
                found.user_agent = value
            elif name == b"accept-language":
                found.accept_language = value
        return found


class ScryptEndpoint:
    """Serve ``/`` for ``node``; pass every other path on to ``app``."""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node
        self.identifier = ClientIdentifier.of(node.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/":
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        state = scope.setdefault("state", {})
        headers = RequestHeaders.read(scope["headers"])
        method = scope["method"]
        try:
            if method == "POST":
                await self.compute(scope, headers, receive, send)
            elif method in ("GET", "HEAD"):
                await self.node.guard.admit_request(self.identify(scope, headers))
                await respond(send, 200, TEXT_HEADERS, b"OK")
            else:
                raise errors.method_not_allowed()
        except ApiError as error:
            state["errno"] = int(error.errno)
            extra = [(b"allow", ALLOWED_METHODS.encode())] if error.status == 405 else []
            await respond_error(send, error, extra)

    def identify(self, scope: Scope, headers: RequestHeaders) -> ClientIdentity:
        peer = scope["client"][0] if scope.get("client") else None
        key = None if headers.api_key is None else headers.api_key.decode("latin-1")
        return self.identifier.identify(peer, headers.forwarded_for, key)

    async def compute(self, scope: Scope, headers: RequestHeaders, receive: Receive, send: Send) -> None:
        """Admit the client, check a browser's origin, admit the job, read and parse the body, then
        wait for a worker.

        Each refusal comes as early as its reason is known: a blocked client, a bad origin and a
        queue that cannot start the job in time are refused before the body is read. The hash
        counts against the client's ``scrypt`` rules once computed; one the scheduler refuses
        (503) does not, since nginx and clients retry those. One whose client left counts: a job
        that has started always finishes, so leaving at the right moment must not make a hash free.
        """
        node, state = self.node, scope["state"]
        settings = node.settings
        client = self.identify(scope, headers)
        place: Place | None = state.pop(PROMISED, None)
        try:
            await node.guard.admit_request(client)
            check_browser(headers, settings.cors_origins)
            if place is None:
                node.scheduler.check_admission()
            with node.scheduler.on_its_way():
                body = await read_body(receive, headers.content_length, settings.max_body_bytes)
                job = wire.parse_request(body, settings.scrypt_params)
                attempt = await node.guard.admit_scrypt(client)
            computed = False
            try:
                if place is not None:  # its place passes to the job itself, submitted now
                    node.scheduler.let_go(place)
                work = node.scheduler.submit(job.params, job.data, admitted=place is not None)
                place = None
                result = await until_disconnect(work, receive)
                computed = True
            except ClientGone:
                computed = True
                raise
            finally:
                await attempt.settle(computed=computed)
        except Rejected as exc:
            node.metrics.count_rejection(exc.reason)
            state["reason"] = exc.reason
            raise errors.service_unavailable(str(exc), node.scheduler.retry_after) from None
        except ClientGone:
            node.metrics.count_rejection("client_gone")
            state["reason"] = "client_gone"
            await respond(send, CLIENT_CLOSED_REQUEST, [], b"")
            return
        finally:
            if place is not None:  # refused (a rule, a key) or gone before its job was submitted
                node.scheduler.let_go(place)
        node.metrics.queue_wait.observe(result.queue_seconds)
        node.metrics.hash_duration.observe(result.hash_seconds)
        state.update(
            errno=0,
            queue_ms=round(result.queue_seconds * 1000, 1),
            hash_ms=round(result.hash_seconds * 1000, 1),
            batch=result.batch_size,
        )
        await respond(send, 200, JSON_HEADERS, b'{"output":"%s"}' % result.output.hex().encode())


@dataclass(frozen=True, slots=True)
class ClientIdentifier:
    """Who sent a request, by the settings' trusted proxies, prefix lengths and API keys, read once
    (each settings attribute is a model lookup, and this runs for every request to ``/``)."""

    trusted_proxies: TrustedProxies
    prefix_lengths: PrefixLengths
    api_keys: ApiKeys

    @classmethod
    def of(cls, settings: Settings) -> ClientIdentifier:
        return cls(settings.trusted_proxies, settings.prefix_lengths, settings.api_keys)

    def identify(
        self, peer: str | None, forwarded_for: Sequence[str], presented_key: str | None
    ) -> ClientIdentity:
        """The client behind a request from ``peer``; an unknown API key is marked, to be counted
        and refused (401). ``forwarded_for`` holds every line of the header, in order: a proxy
        may add its own line after the client's."""
        ip = self.trusted_proxies.client_ip(peer, forwarded_for)
        if presented_key is None:
            return ClientIdentity(ip, prefix_lengths=self.prefix_lengths)
        name = self.api_keys.name_of(presented_key)
        return ClientIdentity(ip, api_key=name, prefix_lengths=self.prefix_lengths, unknown_key=name is None)


async def respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """A whole answer in two ASGI messages (the server sends them in one write)."""
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", b"%d" % len(body))],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, error: ApiError, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        *JSON_HEADERS,
        *((name.lower().encode(), value.encode()) for name, value in error.headers().items()),
    ]
    await respond(send, error.status, headers + extra, error.encoded_body())


def check_browser(headers: RequestHeaders, origins: Sequence[str]) -> None:
    """Refuse a browser's cross-origin POST unless its origin is allowed and its body is JSON.

    Browsers send ``Origin`` with every cross-origin request, and send a text/plain, form or
    multipart POST without asking first (no CORS preflight): without this check any page could
    make its visitors' browsers hash. A JSON body needs a preflight, which CORS answers for the
    same origins. Native clients send no ``Origin`` and keep the 2013 behaviour: their body is
    read as JSON whatever its content type.
    """
    if headers.origin is None:
        return
    if "*" not in origins and headers.origin.decode("latin-1") not in origins:
        raise errors.origin_not_allowed()
    if not is_json(headers.content_type):
        raise errors.unsupported_media_type()


def is_json(content_type: bytes | None) -> bool:
    """``application/json``, alone or with a charset, in any case."""
    if content_type is None:
        return False
    essence, *parameters = content_type.decode("latin-1").split(";")
    return essence.strip().lower() == "application/json" and all(
        parameter.strip().lower().startswith("charset=") for parameter in parameters if parameter.strip()
    )


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """Read the body, refusing with 413 as soon as it is known to exceed ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.body_too_large(limit)
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > limit:
            raise errors.body_too_large(limit)
        if not message.get("more_body", False):
            return body


async def until_disconnect(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientGone


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# -- the OpenAPI description of ``/`` ------------------------------------------------------------------


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _documented_errors() -> dict[str, Any]:
    return {
        str(status): {"description": description, "content": _json(errors.ERROR_JSON_SCHEMA)}
        for status, description in (
            (400, "Invalid request"),
            (401, "Unknown API key"),
            (403, "Client on the deny list, or a browser's origin not allowed"),
            (413, "Body too large"),
            (415, "A browser's request (it sends Origin) without a JSON body"),
            (429, "Rate limited"),
            (503, "Overloaded or draining"),
        )
    }


OUTPUT_SCHEMA = {"type": "object", "required": ["output"], "properties": {"output": {"type": "string"}}}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Add ``/`` to an OpenAPI ``document`` of the routers, and return it."""
    document.setdefault("paths", {})["/"] = {
        "get": {
            "tags": ["scrypt"],
            "summary": "Health check of the 2013 service",
            "description": '"OK" to any client the guard admits.',
            "operationId": "root__get",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
            },
        },
        "post": {
            "tags": ["scrypt"],
            "summary": "Compute scrypt",
            "description": "Computes scrypt with one of the node's allowed parameter sets.",
            "operationId": "compute__post",
            "requestBody": {"required": True, "content": _json(wire.request_json_schema())},
            "responses": {
                "200": {"description": "The scrypt output", "content": _json(OUTPUT_SCHEMA)},
                **_documented_errors(),
            },
        },
    }
    return document
