"""Assemble the ASGI app of a node: routers, error handlers, middleware and the workers' lifespan.

This module only assembles. ``/`` is served by ``scrypt`` (a pure-ASGI endpoint, the node's hot
path, innermost of the middleware); the other routes live in ``dockerflow`` and ``prometheus``,
what they share in ``dependencies``, error shapes in ``error_handlers``, and every middleware in
``middleware/``, one pure-ASGI class per module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

from scrypt_helper import __version__
from scrypt_helper.core.node import Node
from scrypt_helper.http.error_handlers import EXCEPTION_HANDLERS
from scrypt_helper.http.middleware.faults import FaultMiddleware
from scrypt_helper.http.middleware.request_metrics import RequestMetricsMiddleware
from scrypt_helper.http.middleware.request_summary import RequestSummaryMiddleware
from scrypt_helper.http.middleware.security_headers import SecurityHeadersMiddleware
from scrypt_helper.http.routes import dockerflow, prometheus, scrypt, scrypt_openapi

# The node reports through its own Prometheus metrics and logs; FastAPI's OpenTelemetry bridge
# would otherwise look for a configured provider on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the hash workers and the limit store's sync before serving; at shutdown, drain the
    workers and close the store."""
    node: Node = app.state.node
    await asyncio.to_thread(node.scheduler.start)
    node.guard.store.start()
    try:
        yield
    finally:
        node.draining = True
        await asyncio.to_thread(node.scheduler.close, node.settings.shutdown_timeout)
        await node.guard.store.close()
        node.summary_log.flush()


def create_app(node: Node) -> FastAPI:
    """The service's app; its lifespan starts the workers and drains them at shutdown."""
    app = FastAPI(
        title="scrypt-helper",
        version=__version__,
        description="Computes scrypt for clients too weak to do it themselves.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        telemetry=NO_TELEMETRY,
    )
    app.state.node = node
    app.include_router(dockerflow.router)
    if node.settings.metrics_port is None:
        app.include_router(prometheus.router)
    app.openapi = lambda: app.openapi_schema or _document(app)  # type: ignore[method-assign]

    # Each add_middleware wraps what is already there: the last added sees a request first.
    # A request passes: request id and summary log, metrics, security headers and Date, then the
    # endpoint of ``/``, which writes every header of its answers itself (CORS included); every
    # other request goes on through CORS and faults to the routers. A fault's 500 is made inside
    # all the others, so that it goes out through them.
    app.add_middleware(FaultMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(node.settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type"],
        # A cross-origin page reads only the headers listed here: Retry-After to wait as told,
        # the request id to quote in a report.
        expose_headers=["Retry-After", "X-Request-Id"],
        allow_credentials=False,
        max_age=86400,
    )
    app.add_middleware(scrypt.ScryptEndpoint, node=node)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=node.metrics)
    app.add_middleware(RequestSummaryMiddleware, summary_log=node.summary_log)
    return app


def _document(app: FastAPI) -> dict[str, Any]:
    """The routers' OpenAPI document, with ``/`` added; made once, on first request."""
    app.openapi_schema = scrypt_openapi.describe(FastAPI.openapi(app))
    return app.openapi_schema


def create_metrics_app(node: Node) -> FastAPI:
    """A separate app for a private port: ``/metrics``, and the Dockerflow routes for kubelet probes.

    Probes here never compete with the public port's clients for its connections.
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=NO_TELEMETRY)
    app.state.node = node
    app.include_router(prometheus.router)
    app.include_router(dockerflow.router)
    # The same guarantees as the public port: the security headers and a JSON 500 on a fault.
    app.add_middleware(FaultMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
