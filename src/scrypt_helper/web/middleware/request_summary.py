"""The request id, and the MozLog ``request.summary`` line of every request with where its time went.

Dockerflow's ``RequestIdMiddleware`` and ``MozlogRequestSummaryLogger`` do this in two layers, each
decoding every request header into a dict. Here one layer reads the three headers it needs and
writes the same line with the same fields: ``agent``, ``path``, ``method``, ``code``, ``lang``,
``t`` (ms), ``rid``, plus the numbers the endpoint leaves in ``scope["state"]``. The request id
also goes into dockerflow's context, so every other log line of the request carries it.
Nothing here ever sees a request body.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from dockerflow.logging import request_id_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Numbers the endpoint of ``/`` records in scope["state"] for the summary line.
SUMMARY_STATE_FIELDS = ("errno", "reason", "queue_ms", "hash_ms", "batch")


class RequestSummaryMiddleware:
    """Give each request an id (its ``X-Request-Id``, or a fresh UUID), then log its summary."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger("request.summary")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = agent = lang = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
            elif name == b"user-agent":
                agent = value.decode("latin-1")
            elif name == b"accept-language":
                lang = value.decode("latin-1")
        rid = rid or str(uuid.uuid4())
        request_id_context.set(rid)
        status = 500
        started = time.perf_counter()

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            log_summary(
                self.logger,
                agent=agent,
                path=scope["path"],
                method=scope["method"],
                code=status,
                lang=lang,
                seconds=time.perf_counter() - started,
                rid=rid,
                state=scope.get("state") or {},
            )


def log_summary(
    logger: logging.Logger,
    *,
    agent: str | None,
    path: str,
    method: str,
    code: int,
    lang: str | None,
    seconds: float,
    rid: str,
    state: dict[str, Any],
) -> None:
    """Write one ``request.summary`` line (also for requests answered below ASGI, by the door)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "agent": agent or "",
        "path": path,
        "method": method,
        "code": code,
        "lang": lang,
        "t": int(seconds * 1000),
        "rid": rid,
    }
    for name in SUMMARY_STATE_FIELDS:
        if name in state:
            fields[name] = state[name]
    logger.info("", extra=fields)
