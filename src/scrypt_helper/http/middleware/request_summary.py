"""The request id, and the MozLog ``request.summary`` line of every request with where its time went.

Dockerflow's ``RequestIdMiddleware`` and ``MozlogRequestSummaryLogger`` do this in two layers, each
decoding every request header into a dict. Here one layer reads the three headers it needs and
writes the same line with the same fields: ``agent``, ``path``, ``method``, ``code``, ``lang``,
``t`` (ms), ``rid``, plus the numbers the endpoint leaves in ``scope["state"]``. The request id is
the one the protocol gave the request (``REQUEST_ID`` in its state), else a well-formed
``X-Request-Id`` it sent, else a fresh one; it goes into the state for the endpoint, onto the
answer, and into dockerflow's context, so every other log line of the request carries it. The
line is written by the node's ``SummaryLog``, which holds refusals to a budget a second.
Nothing here ever sees a request body.
"""

from __future__ import annotations

import time

from dockerflow.logging import request_id_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper.http.handoff import REQUEST_ID
from scrypt_helper.http.request_ids import request_id
from scrypt_helper.observability.log import SummaryLog


class RequestSummaryMiddleware:
    """Give each request an id, answer with it, log its summary."""

    def __init__(self, app: ASGIApp, summary_log: SummaryLog) -> None:
        self.app = app
        self.summary_log = summary_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = agent = lang = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent = value
            elif name == b"user-agent":
                agent = value.decode("latin-1")
            elif name == b"accept-language":
                lang = value.decode("latin-1")
        state = scope.setdefault("state", {})
        rid = state.get(REQUEST_ID) or request_id(sent)
        state[REQUEST_ID] = rid
        encoded_rid = rid.encode("ascii")
        request_id_context.set(rid)
        status = 500
        started = time.perf_counter()

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The answer names the id its log lines carry, so a client can quote it in a report.
                headers = message.get("headers", ())
                if not any(name == b"x-request-id" for name, _ in headers):
                    message["headers"] = [*headers, (b"x-request-id", encoded_rid)]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            self.summary_log.write(
                agent=agent,
                path=scope["path"],
                method=scope["method"],
                code=status,
                lang=lang,
                seconds=time.perf_counter() - started,
                rid=rid,
                state=state,
            )
