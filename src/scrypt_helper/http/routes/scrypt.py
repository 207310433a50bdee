"""The 2013 service's endpoint, ``/``: ``POST`` computes scrypt, ``GET`` answers "OK".

This is the node's hot path, and under a flood most of its answers are refusals. So it is a
pure-ASGI app in front of CORS and the routers: every answer still passes the request id,
summary log, metrics and security-header layers, but none pays for FastAPI's routing,
dependency resolution and request objects, which cost more than all those layers together.
``POST /`` is judged by ``http.admission`` alone: early admission's judgement when the protocol made one
(``http.handoff.DECISION``), taken as it is, else the endpoint's own call of the same judgement.
Every answer's headers, CORS included, come from ``http.answers``, the encoder of early admission's
answers too. Every other path, and a browser's preflight, goes on to the app behind.
Its body is read by ``http.request_reading``; ``http.routes.scrypt_openapi`` describes it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper.core import errors
from scrypt_helper.core.errors import ApiError
from scrypt_helper.core.node import Node
from scrypt_helper.core.scheduler import Rejected
from scrypt_helper.http.admission import Admission, Admitted, BodyVerdict, HeadVerdict, RequestHead, Ticket
from scrypt_helper.http.answers import Header, answer_headers, cors_headers, refusal_headers
from scrypt_helper.http.handoff import DECISION, REQUEST_ID
from scrypt_helper.http.request_reading import ClientGone, read_body, until_disconnect

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its answer
ALLOWED_METHODS = "GET, HEAD, OPTIONS, POST"  # OPTIONS: a browser's preflight, answered by CORS
JSON = (b"content-type", b"application/json")
TEXT = (b"content-type", b"text/plain; charset=utf-8")


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What the middleware reads of a matched route (``scope["route"]``): its path template."""

    path: str


ROUTE = RouteTemplate("/")


class ScryptEndpoint:
    """Serve ``/`` for ``node``; pass every other path on to ``app``."""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node
        self.admission = Admission(node)
        self.cors_origins = node.settings.cors_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or is_preflight(scope):
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        state = scope.setdefault("state", {})
        peer = scope["client"][0] if scope.get("client") else None
        head = RequestHead.read(scope["headers"], peer, state.get(REQUEST_ID))
        cors = cors_headers(head.origin, self.cors_origins)
        method = scope["method"]
        answer = Answer(send, head, cors)
        try:
            if method == "POST":
                await self.compute(state, head, receive, answer)
            elif method in ("GET", "HEAD"):
                key = None if head.api_key is None else head.api_key.decode("latin-1")
                client = self.admission.identifier.identify(peer, head.forwarded_for, key)
                await self.node.guard.admit_request(client)
                await answer.send(200, [TEXT], b"OK")
            else:
                raise errors.method_not_allowed()
        except ApiError as error:
            state["errno"] = int(error.errno)
            if error.reason is not None:
                state["reason"] = error.reason
            extra = [(b"allow", ALLOWED_METHODS.encode())] if error.status == 405 else []
            await answer.refuse(error, extra)
        except Exception:
            if answer.started:  # part of an answer has gone: only closing the connection is left
                raise
            error = errors.unspecified()
            state["errno"] = int(error.errno)
            await answer.refuse(error, [])
            raise

    async def compute(
        self, state: dict[str, Any], head: RequestHead, receive: Receive, answer: Answer
    ) -> None:
        """Take early admission's judgement, or judge the head and then the body here, then wait for a worker.

        The hash counts against the client's ``scrypt`` rules once computed; one the scheduler
        refuses (503) does not, since nginx and clients retry those. One whose client left counts: a
        job that has started always finishes, so leaving at the right moment must not make a hash free.
        """
        node = self.node
        decided: Admitted | Awaitable[HeadVerdict | BodyVerdict] | None = state.pop(DECISION, None)
        if decided is None:
            verdict: HeadVerdict | BodyVerdict = await self.admission.judge_head(head)
        elif isinstance(decided, Admitted):
            verdict = decided
        else:
            verdict = await decided
        try:
            if isinstance(verdict, Ticket):
                answer.body_read = False
                with node.scheduler.expecting_job():
                    body = await read_body(receive, self.admission.max_body_bytes)
                answer.body_read = True
                verdict = await self.admission.judge_body(verdict, body)
        except ClientGone:
            state["reason"] = "client_gone"
            node.metrics.count_rejection("client_gone")
            await answer.send(CLIENT_CLOSED_REQUEST, [], b"")
            return
        if isinstance(verdict, ApiError):
            raise verdict
        assert isinstance(verdict, Admitted)
        await self.hash(state, verdict, receive, answer)

    async def hash(self, state: dict[str, Any], admitted: Admitted, receive: Receive, answer: Answer) -> None:
        """Queue the admitted job in the place kept for it, and answer its hash."""
        node, job = self.node, admitted.job
        computed = False
        try:
            work = node.scheduler.submit(job.params, job.data, place=admitted.place)
            result = await until_disconnect(work, receive)
            computed = True
        except Rejected as exc:
            node.metrics.count_rejection(exc.reason)
            raise errors.service_unavailable(str(exc), node.scheduler.retry_after, exc.reason) from None
        except ClientGone:
            computed = True
            state["reason"] = "client_gone"
            node.metrics.count_rejection("client_gone")
            await answer.send(CLIENT_CLOSED_REQUEST, [], b"")
            return
        finally:
            await admitted.attempt.settle(computed=computed)
        node.metrics.queue_wait.observe(result.queue_seconds)
        node.metrics.hash_duration.observe(result.hash_seconds)
        state.update(
            errno=0,
            queue_ms=round(result.queue_seconds * 1000, 1),
            hash_ms=round(result.hash_seconds * 1000, 1),
            batch=result.batch_size,
        )
        await answer.send(200, [JSON], b'{"output":"%s"}' % result.output.hex().encode())


class Answer:
    """The answer to one request to ``/``: every one gets the headers of ``http.answers``."""

    def __init__(self, send: Send, head: RequestHead, cors: list[Header]) -> None:
        self._send = send
        self.head = head
        self.cors = cors
        self.started = False
        self.body_read = True  # False while a body the client may hold back is unread

    async def send(self, status: int, headers: list[Header], body: bytes) -> None:
        await self._start(status, [*headers, *answer_headers(self.head.request_id, self.cors)], body)

    async def refuse(self, error: ApiError, extra: list[Header]) -> None:
        # A client waiting for 100 Continue may never send the body: the connection must end.
        close = self.head.expects_continue and not self.body_read
        headers = refusal_headers(error, self.head.request_id, self.cors, close=close)
        await self._start(error.status, [*headers, *extra], error.encoded_body())

    async def _start(self, status: int, headers: list[Header], body: bytes) -> None:
        """A whole answer in two ASGI messages (the server sends them in one write)."""
        self.started = True
        start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body})


def is_preflight(scope: Scope) -> bool:
    """A browser's CORS preflight, which CORS behind answers."""
    if scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names
