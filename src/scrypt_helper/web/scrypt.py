"""The 2013 service's endpoint: ``POST /`` computes scrypt, ``GET /`` answers "OK"."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from scrypt_helper import errors, wire
from scrypt_helper.scheduler import Rejected
from scrypt_helper.web.dependencies import AdmittedClient, NodeDep
from scrypt_helper.web.error_handlers import NO_STORE

T = TypeVar("T")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its answer

router = APIRouter(tags=["scrypt"])


class ClientGone(Exception):
    """The client disconnected before its hash was done."""


def _documented_errors() -> dict[int | str, dict[str, Any]]:
    content = {"application/json": {"schema": errors.ERROR_JSON_SCHEMA}}
    return {
        status: {"description": description, "content": content}
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


@router.get("/", response_class=PlainTextResponse, summary="Health check of the 2013 service")
@router.head("/", include_in_schema=False)
async def root(client: AdmittedClient) -> str:
    """ "OK" to any client the guard admits (the 2013 service's health check)."""
    return "OK"


@router.post(
    "/",
    summary="Compute scrypt",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": wire.request_json_schema()}},
        }
    },
    responses={
        200: {"description": "The scrypt output", "content": {"application/json": {"schema": OUTPUT_SCHEMA}}},
        **_documented_errors(),
    },
)
async def compute(request: Request, node: NodeDep, client: AdmittedClient) -> Response:
    """Check a browser's origin, read and parse the body, admit the hash, then wait for a worker.

    The hash counts against the client's ``scrypt`` rules once computed; one the scheduler refuses
    (503) does not, since nginx and clients retry those. One whose client left counts: a job that
    has started always finishes, so leaving at the right moment must not make a hash free.
    """
    try:
        check_browser(request, node.settings.cors_origins)
        body = await read_body(request, node.settings.max_body_bytes)
        job = wire.parse_request(body, node.settings.scrypt_params)
        attempt = await node.guard.admit_scrypt(client)
        computed = False
        try:
            result = await until_disconnect(node.scheduler.submit(job.params, job.data), request.receive)
            computed = True
        except ClientGone:
            computed = True
            raise
        finally:
            await attempt.settle(computed=computed)
    except Rejected as exc:
        node.metrics.rejections.labels(exc.reason).inc()
        request.state.reason = exc.reason
        raise errors.service_unavailable(str(exc), node.scheduler.retry_after) from None
    except ClientGone:
        node.metrics.rejections.labels("client_gone").inc()
        request.state.reason = "client_gone"
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    node.metrics.queue_wait.observe(result.queue_seconds)
    node.metrics.hash_duration.observe(result.hash_seconds)
    request.state.errno = 0
    request.state.queue_ms = round(result.queue_seconds * 1000, 1)
    request.state.hash_ms = round(result.hash_seconds * 1000, 1)
    request.state.batch = result.batch_size
    return JSONResponse({"output": result.output.hex()}, headers=NO_STORE)


def check_browser(request: Request, origins: Sequence[str]) -> None:
    """Refuse a browser's cross-origin POST unless its origin is allowed and its body is JSON.

    Browsers send ``Origin`` with every cross-origin request, and send a text/plain, form or
    multipart POST without asking first (no CORS preflight): without this check any page could
    make its visitors' browsers hash. A JSON body needs a preflight, which CORS answers for the
    same origins. Native clients send no ``Origin`` and keep the 2013 behaviour: their body is
    read as JSON whatever its content type.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    if "*" not in origins and origin not in origins:
        raise errors.origin_not_allowed()
    if not is_json(request.headers.get("content-type")):
        raise errors.unsupported_media_type()


def is_json(content_type: str | None) -> bool:
    """``application/json``, alone or with a charset, in any case."""
    if content_type is None:
        return False
    essence, *parameters = content_type.split(";")
    return essence.strip().lower() == "application/json" and all(
        parameter.strip().lower().startswith("charset=") for parameter in parameters if parameter.strip()
    )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.body_too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise errors.body_too_large(limit)
    except ClientDisconnect:
        raise ClientGone from None
    return bytes(body)


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
