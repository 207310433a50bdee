"""``POST /`` judged below ASGI, where the HTTP protocol reads it: early admission of the node's hot path.

Under overload or a flood most requests to ``/`` are refused, and a refusal that goes through
ASGI, the middleware and the endpoint costs several times what the server itself needs to read
the request. So the protocol hands the head, then the body it holds, to ``EarlyAdmission``, which asks the
one judgement (``admission.Admission``) and turns its verdict into what the protocol does next:

- a refusal: the whole answer, written by the one encoder, recorded as the endpoint's would be
  (summary line, request metrics); the rest of the request is dropped as it comes;
- a ticket (head let through): the protocol holds the body, up to ``--max-body-bytes``;
- an admitted job, or a judgement that has to wait (a hash's limits in Redis): the request goes on
  to the endpoint with it in its scope (``http.handoff.DECISION``), and is never judged again.

The judgement runs at once on the protocol's stack (``http.eager``): the limits every request meets
are counted in memory, with Redis or without, so a refusal costs no task and no loop turn. Only a
hash's own limits in Redis wait, and go on as a task, handed on to the endpoint with the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from scrypt_helper.core.errors import ApiError
from scrypt_helper.core.node import Node
from scrypt_helper.http.admission import Admission, Admitted, RequestHead, Ticket
from scrypt_helper.http.answers import cors_headers
from scrypt_helper.http.eager import Done, run_eagerly
from scrypt_helper.http.edge import EdgeRefusals

# What early admission makes of a head: an answer to write, a ticket to hold the body for, or a
# judgement still going (a task) to hand on with the request.
HeadOutcome = bytes | Ticket | asyncio.Task[ApiError | Ticket]
BodyOutcome = bytes | Admitted | asyncio.Task[ApiError | Admitted]


class EarlyAdmission:
    """Runs the judgement of ``POST /`` for the protocol, and writes its refusals."""

    def __init__(self, node: Node, edge: EdgeRefusals) -> None:
        self.admission = Admission(node)
        self.max_body_bytes = node.settings.max_body_bytes
        self.cors_origins = node.settings.cors_origins
        self.edge = edge

    def head(
        self, raw_headers: Sequence[tuple[bytes, bytes]], peer: str | None
    ) -> tuple[RequestHead, HeadOutcome]:
        """At the end of the headers: the head read, and what becomes of the request."""
        started = time.perf_counter()
        head = RequestHead.read(raw_headers, peer)
        verdict = run_eagerly(self.admission.judge_head(head))
        if not isinstance(verdict, Done):
            return head, verdict
        if isinstance(verdict.value, ApiError):
            return head, self.refuse(head, verdict.value, started, close=head.expects_continue)
        return head, verdict.value

    def body(self, ticket: Ticket, body: bytes) -> BodyOutcome:
        """Once the body is in: an answer refusing it, the admitted job, or its judgement going on."""
        verdict = run_eagerly(self.admission.judge_body(ticket, body))
        if not isinstance(verdict, Done):
            return verdict
        if isinstance(verdict.value, ApiError):
            return self.refuse(ticket.head, verdict.value, ticket.started)
        return verdict.value

    def too_large(self, ticket: Ticket) -> bytes:
        """The answer to a body found over the limit while it comes (413)."""
        return self.refuse(ticket.head, self.admission.too_large(), ticket.started)

    def refuse(self, head: RequestHead, error: ApiError, started: float, *, close: bool = False) -> bytes:
        """The whole answer for ``error``, recorded as the endpoint records its answers; ``close``:
        the connection ends after it (a client that waits for ``100 Continue`` and is refused from
        its head may never send its body, which would otherwise be read as the next request)."""
        return self.edge.answer(
            error,
            rid=head.request_id,
            method="POST",
            path="/",
            route="/",
            seconds=time.perf_counter() - started,
            agent=head.user_agent,
            lang=head.accept_language,
            cors=cors_headers(head.origin, self.cors_origins),
            close=close,
        )
