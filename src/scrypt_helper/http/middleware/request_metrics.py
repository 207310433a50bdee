"""Count requests by route template, method and status, and time them."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper.observability.metrics import KNOWN_METHODS, Metrics, RequestSeries


class RequestMetricsMiddleware:
    """Record every HTTP request in ``Metrics.requests`` and ``Metrics.request_duration``.

    Labels stay bounded: the route template (``unmatched`` for none) and a known method or ``OTHER``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.series = RequestSeries(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            self.series.record(route, method, status, time.perf_counter() - started)
