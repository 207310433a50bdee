"""The ASGI application: the scrypt endpoint, error mapping, CORS, Dockerflow and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from dockerflow.fastapi.middleware import RequestIdMiddleware
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from scrypt_helper import __version__, errors, protocol
from scrypt_helper.abuse import ApiKeys, Client, Guard, TrustedProxies
from scrypt_helper.abuse.identity import API_KEY_HEADER
from scrypt_helper.config import Settings
from scrypt_helper.dockerflow_routes import dockerflow_router
from scrypt_helper.errors import ApiError
from scrypt_helper.log import RequestSummaryLogger
from scrypt_helper.metrics import Metrics
from scrypt_helper.middleware import RequestMetricsMiddleware, SecurityHeadersMiddleware
from scrypt_helper.scheduler import Rejected, Scheduler

logger = logging.getLogger("scrypt_helper.app")
T = TypeVar("T")
NO_STORE = {"Cache-Control": "no-store"}
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its answer

HASH_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["input", "salt", "N", "r", "p", "buflen"],
    "properties": {
        "input": {"type": "string", "pattern": "^([0-9a-fA-F]{2}){1,256}$", "description": "Hex input."},
        "salt": {"type": "string"},
        "N": {"type": "integer"},
        "r": {"type": "integer"},
        "p": {"type": "integer"},
        "buflen": {"type": "integer"},
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "errno", "error", "message"],
    "properties": {
        "code": {"type": "integer"},
        "errno": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
    },
}


@dataclass
class Node:
    """What one running node's routes share."""

    settings: Settings
    scheduler: Scheduler
    metrics: Metrics
    guard: Guard
    proxies: TrustedProxies
    api_keys: ApiKeys
    draining: bool = False

    def identify(self, request: Request) -> Client:
        """The client behind this request; an unknown API key is refused with 401."""
        peer = request.client.host if request.client else None
        ip = self.proxies.client_ip(peer, request.headers.get("x-forwarded-for"))
        presented = request.headers.get(API_KEY_HEADER)
        if presented is None:
            return Client(ip)
        name = self.api_keys.name_of(presented)
        if name is None:
            raise errors.invalid_api_key()
        return Client(ip, api_key=name)


class ClientGone(Exception):
    """The client disconnected before its hash was done."""


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers={**error.headers(), **NO_STORE})


def create_app(node: Node) -> FastAPI:
    """Build the app; the lifespan starts the workers and drains them at shutdown."""
    settings = node.settings
    allowed = settings.scrypt_params

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(node.scheduler.start)
        try:
            yield
        finally:
            node.draining = True
            await asyncio.to_thread(node.scheduler.close, settings.shutdown_timeout)
            await node.guard.store.close()

    app = FastAPI(
        title="scrypt-helper",
        version=__version__,
        description="Computes scrypt for clients too weak to do it themselves.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.node = node

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        request.state.errno = int(exc.errno)
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            error = errors.method_not_allowed()
        elif exc.status_code == 404:
            error = errors.not_found()
        else:
            error = ApiError(exc.status_code, errors.Errno.UNSPECIFIED, str(exc.detail))
        request.state.errno = int(error.errno)
        response = error_response(error)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        error = errors.unspecified()
        request.state.errno = int(error.errno)
        return error_response(error)

    @app.get("/", response_class=PlainTextResponse, summary="Health check of the 2013 service")
    @app.head("/", include_in_schema=False)
    async def root(request: Request) -> str:
        await node.guard.admit_request(node.identify(request))
        return "OK"

    @app.post(
        "/",
        summary="Compute scrypt",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": HASH_REQUEST_SCHEMA}},
            }
        },
        responses={
            200: {
                "description": "The scrypt output",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["output"],
                            "properties": {"output": {"type": "string"}},
                        }
                    }
                },
            },
            **{
                status: {
                    "description": description,
                    "content": {"application/json": {"schema": ERROR_SCHEMA}},
                }
                for status, description in (
                    (400, "Invalid request"),
                    (401, "Unknown API key"),
                    (403, "Client on the deny list"),
                    (413, "Body too large"),
                    (429, "Rate limited"),
                    (503, "Overloaded or draining"),
                )
            },
        },
    )
    async def compute(request: Request) -> Response:
        client = node.identify(request)
        await node.guard.admit_request(client)
        try:
            body = await read_body(request, settings.max_body_bytes)
            job = protocol.parse_request(body, allowed)
            await node.guard.admit_scrypt(client)
            result = await until_disconnect(node.scheduler.submit(job.params, job.data), request.receive)
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

    app.include_router(dockerflow_router)
    if settings.metrics_port is None:
        app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type"],
        allow_credentials=False,
        max_age=86400,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=node.metrics)
    app.add_middleware(RequestSummaryLogger)
    app.add_middleware(RequestIdMiddleware)
    return app


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (a path may have one route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods | {"OPTIONS"})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this node's metrics."""
    body, content_type = request.app.state.node.metrics.render()
    return Response(body, media_type=content_type)


def create_metrics_app(node: Node) -> FastAPI:
    """A separate app serving only /metrics, for a private port."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.node = node
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
    return app


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
