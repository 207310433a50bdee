"""Refusals of ``POST /`` decided below ASGI, from the headers and then from the body.

Under overload or a flood most requests to ``/`` are refused, and a refusal that goes through
ASGI, the middleware and the endpoint costs several times what the server itself needs to read
the request. So the HTTP protocol asks ``Door`` first:

- at the end of the headers: a client on the deny list (403), a client this node refused for a
  block or ban still in force (429, from the guard's memory, no store trip), a queue that could
  not start the job within ``--max-queue-wait`` (503), a declared body over the limit (413);
- once the body is in (the protocol holds it, up to ``--max-body-bytes``): a body that is no
  valid request (400), one over the limit after all (413), or a queue that filled meanwhile (503).
  A valid request keeps its place in the queue from here (``Scheduler.promise``) until the endpoint
  queues its job, taking the door's word for it: the requests judged meanwhile count it. Only a
  valid body gets a place, so a client that sends headers and holds its body back holds none.

For those it writes a complete answer, mostly pre-serialised, and keeps the connection; the body
is dropped unread where it has not come yet. Anything else goes on to ASGI as if the door were not
there (a body it held is handed over as it came). The answer is the endpoint's: the JSON error,
``Retry-After``, the security headers, a ``request.summary`` line, the request metrics and the
rejection or abuse-decision counts. A request the endpoint would have counted against the
``request`` rules (every one but a blocked client's) is counted here too: at once where the
limits are in this process's memory, else (Redis) just after its answer, by a few counter tasks.
Browsers (they send ``Origin``: the answer needs CORS headers) and requests with an API key
(their key is judged first) go the whole way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from scrypt_helper import errors, wire
from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.errors import ApiError
from scrypt_helper.node import Node
from scrypt_helper.scheduler import Place, Rejected
from scrypt_helper.web.middleware.request_metrics import RequestSeries
from scrypt_helper.web.middleware.security_headers import ENCODED_SECURITY_HEADERS
from scrypt_helper.web.scrypt import ClientIdentifier, RequestHeaders

FIXED_HEADERS = b"".join(
    b"%s: %s\r\n" % pair for pair in ((b"content-type", b"application/json"), *ENCODED_SECURITY_HEADERS)
)
# Answers kept encoded: the fixed ones (403, 503s, 400s, 413) and a ban's 429 for each second it
# still has to run, so this is far more than a node needs at once; past it, the table starts over.
MAX_ENCODED = 256
# Refused requests waiting to be counted against the limit store; beyond this many (a store far
# slower than the refusals) the door's refusals go uncounted rather than pile up.
MAX_COUNTING = 1000
COUNTERS = 8  # tasks counting them, each one request at a time
COUNTED_PER_TURN = 8  # requests a counter counts before it lets the loop run other work


def encode_response(error: ApiError) -> bytes:
    """The whole HTTP/1.1 answer for ``error``: status line, headers, JSON body."""
    body = error.encoded_body()
    extra = "".join(f"{name.lower()}: {value}\r\n" for name, value in error.headers().items()).encode()
    status = b"HTTP/1.1 %d %s\r\n" % (error.status, error.body()["error"].encode())  # type: ignore[union-attr]
    return b"%s%s%scontent-length: %d\r\n\r\n%s" % (status, FIXED_HEADERS, extra, len(body), body)


@dataclass(slots=True)
class Pending:
    """A request the door let through at its headers, to judge again once its body is in."""

    headers: RequestHeaders
    client: ClientIdentity
    started: float


class Door:
    """Answers a request to ``/`` below ASGI when its headers or its body already decide a refusal."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.max_body_bytes = node.settings.max_body_bytes
        self.scrypt_params = node.settings.scrypt_params
        self.identifier = ClientIdentifier.of(node.settings)
        self.series = RequestSeries(node.metrics)
        self.summary_log = node.summary_log
        self._encoded: dict[tuple[int, str, str | None], bytes] = {}  # by status, message, Retry-After
        self._to_count: collections.deque[ClientIdentity] = collections.deque()  # refused, to count
        self._counters: set[asyncio.Task[None]] = set()

    def refusal(
        self, method: bytes, url: bytes, raw_headers: Sequence[tuple[bytes, bytes]], peer: str | None
    ) -> bytes | Pending | None:
        """At the end of the headers: the answer refusing this request now; ``Pending`` to judge it
        again with its body (``judge_body``); None to serve it the usual way."""
        if method != b"POST" or url != b"/":
            return None
        started = time.perf_counter()
        headers = RequestHeaders.read(raw_headers)
        if headers.origin is not None or headers.api_key is not None:
            return None
        node = self.node
        client = self.identifier.identify(peer, headers.forwarded_for, None)
        if node.guard.denied(client):
            return self._answer(headers, started, errors.forbidden())
        if (left := node.guard.penalty(client)) is not None:
            return self._answer(headers, started, errors.too_many_requests(left))
        try:
            node.scheduler.check_admission()
        except Rejected as exc:
            return self._unavailable(headers, started, client, exc)
        declared = headers.content_length
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._answer(headers, started, errors.body_too_large(self.max_body_bytes), client)
        return Pending(headers, client, started)

    def judge_body(self, pending: Pending, body: bytes) -> bytes | Place:
        """Once the body is in: the answer refusing it (400, or 503 if the queue filled meanwhile),
        or the place in the queue kept for its job (``Scheduler.promise``) to serve it the usual
        way (the protocol hands the place to the endpoint as ``PROMISED`` in its scope's state)."""
        try:
            job = wire.parse_request(body, self.scrypt_params)
        except ApiError as error:
            return self._answer(pending.headers, pending.started, error, pending.client)
        try:
            return self.node.scheduler.promise(job.params)
        except Rejected as exc:
            return self._unavailable(pending.headers, pending.started, pending.client, exc)

    def too_large(self, pending: Pending) -> bytes:
        """The answer to a body found over the limit while it comes (413)."""
        error = errors.body_too_large(self.max_body_bytes)
        return self._answer(pending.headers, pending.started, error, pending.client)

    def _unavailable(
        self, headers: RequestHeaders, started: float, client: ClientIdentity, exc: Rejected
    ) -> bytes:
        self.node.metrics.count_rejection(exc.reason)
        error = errors.service_unavailable(str(exc), self.node.scheduler.retry_after)
        return self._answer(headers, started, error, client, reason=exc.reason)

    def _answer(
        self,
        headers: RequestHeaders,
        started: float,
        error: ApiError,
        counted: ClientIdentity | None = None,
        reason: str | None = None,
    ) -> bytes:
        """Encode the answer, record it like the endpoint, and count ``counted``'s request."""
        if counted is not None:
            self._count(counted)
        state: dict[str, object] = {"errno": int(error.errno)}
        if reason is not None:
            state["reason"] = reason
        seconds = time.perf_counter() - started
        self.series.record("/", "POST", error.status, seconds)
        self.summary_log.write(
            agent=None if headers.user_agent is None else headers.user_agent.decode("latin-1"),
            path="/",
            method="POST",
            code=error.status,
            lang=None if headers.accept_language is None else headers.accept_language.decode("latin-1"),
            seconds=seconds,
            rid=headers.request_id.decode("latin-1") if headers.request_id else None,
            state=state,
        )
        key = (error.status, error.message, error.headers().get("Retry-After"))
        answer = self._encoded.get(key)
        if answer is None:
            if len(self._encoded) >= MAX_ENCODED:
                self._encoded.clear()
            answer = self._encoded[key] = encode_response(error)
        return answer

    def _count(self, client: ClientIdentity) -> None:
        """Count the request against the ``request`` rules, as the endpoint would have: at once
        where the limits are in memory, else by the counter tasks after the answer. A block or ban
        it trips refuses the client's next requests."""
        guard = self.node.guard
        if not guard.counts(client):
            return
        if guard.counts_at_once:
            guard.count_request_now(client)
            return
        if len(self._to_count) >= MAX_COUNTING:
            return
        self._to_count.append(client)
        if len(self._counters) < COUNTERS:
            task = asyncio.get_running_loop().create_task(self._counter())
            self._counters.add(task)
            task.add_done_callback(self._counters.discard)

    async def _counter(self) -> None:
        """Count queued requests until none is left. A few of these run at once, so that a store
        round trip does not hold up the rest, and a flood makes no task per refusal."""
        guard, queued = self.node.guard, self._to_count
        while queued:
            for _ in range(min(len(queued), COUNTED_PER_TURN)):
                with contextlib.suppress(ApiError):
                    await guard.admit_request(queued.popleft())
            await asyncio.sleep(0)  # a store that answers at once must not hold the loop for the queue
