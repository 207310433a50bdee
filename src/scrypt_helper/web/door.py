"""Refusals of ``POST /`` decided from the request line and headers alone, below ASGI.

Under overload or a flood most requests to ``/`` are refused, and a refusal that goes through
ASGI, the middleware and the endpoint costs several times what the server itself needs to read
the request. Two refusals need nothing but the headers: a queue that could not start the job
within ``--max-queue-wait`` (503), and a client this node refused for a block or ban still in
force (429, from the guard's memory, with no store trip). The HTTP protocol asks ``Door`` at the
end of the headers; for those two it writes a complete, mostly pre-serialised answer and drops
the body unread, keeping the connection. The answer carries what every other answer does: the
JSON error, ``Retry-After``, the security headers, a ``request.summary`` line, the request
metrics and the rejection or abuse-decision counts. A browser's request (it sends ``Origin``)
goes the whole way, since its answer needs CORS headers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from scrypt_helper import errors
from scrypt_helper.errors import ApiError
from scrypt_helper.node import Node
from scrypt_helper.scheduler import Rejected
from scrypt_helper.web.middleware.request_metrics import RequestSeries
from scrypt_helper.web.middleware.request_summary import log_summary
from scrypt_helper.web.middleware.security_headers import ENCODED_SECURITY_HEADERS
from scrypt_helper.web.scrypt import RequestHeaders, identify_client

STATUS_LINES = {429: b"HTTP/1.1 429 Too Many Requests\r\n", 503: b"HTTP/1.1 503 Service Unavailable\r\n"}
FIXED_HEADERS = b"".join(
    b"%s: %s\r\n" % pair for pair in ((b"content-type", b"application/json"), *ENCODED_SECURITY_HEADERS)
)


def encode_response(error: ApiError) -> bytes:
    """The whole HTTP/1.1 answer for ``error``: status line, headers, JSON body."""
    body = error.encoded_body()
    extra = "".join(f"{name.lower()}: {value}\r\n" for name, value in error.headers().items()).encode()
    return b"%s%s%scontent-length: %d\r\n\r\n%s" % (
        STATUS_LINES[error.status],
        FIXED_HEADERS,
        extra,
        len(body),
        body,
    )


class Door:
    """Answers a request to ``/`` from its headers when they already decide a refusal."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.series = RequestSeries(node.metrics)
        self.logger = logging.getLogger("request.summary")
        self._unavailable: dict[str, bytes] = {}  # one pre-serialised 503 per reason
        self._rejection_counters: dict[str, Any] = {}

    def refusal(
        self, method: bytes, url: bytes, raw_headers: Sequence[tuple[bytes, bytes]], peer: str | None
    ) -> bytes | None:
        """The complete answer refusing this request now, or None to serve it the usual way."""
        if method != b"POST" or url != b"/":
            return None
        started = time.perf_counter()
        headers = RequestHeaders.read(raw_headers)
        if headers.origin is not None:
            return None
        node = self.node
        state: dict[str, object] = {}
        key = None if headers.api_key is None else headers.api_key.decode("latin-1")
        client = identify_client(node.settings, peer, headers.forwarded_for, key)
        if (left := node.guard.penalty(client)) is not None:
            error = errors.too_many_requests(left)
            answer = encode_response(error)
        else:
            try:
                node.scheduler.check_admission()
                return None
            except Rejected as exc:
                self._rejections(exc.reason).inc()
                state["reason"] = exc.reason
                error = errors.service_unavailable(str(exc), node.scheduler.retry_after)
                answer = self._unavailable.get(error.message) or self._remember(error)
        state["errno"] = int(error.errno)
        seconds = time.perf_counter() - started
        self.series.record("/", "POST", error.status, seconds)
        log_summary(
            self.logger,
            agent=None if headers.user_agent is None else headers.user_agent.decode("latin-1"),
            path="/",
            method="POST",
            code=error.status,
            lang=None if headers.accept_language is None else headers.accept_language.decode("latin-1"),
            seconds=seconds,
            rid=headers.request_id.decode("latin-1") if headers.request_id else str(uuid.uuid4()),
            state=state,
        )
        return answer

    def _rejections(self, reason: str) -> Any:
        counter = self._rejection_counters.get(reason)
        if counter is None:  # the reasons are a handful of labels
            counter = self._rejection_counters[reason] = self.node.metrics.rejections.labels(reason)
        return counter

    def _remember(self, error: ApiError) -> bytes:
        answer = encode_response(error)
        if len(self._unavailable) < 16:  # the reasons are few; never grow on anything else
            self._unavailable[error.message] = answer
        return answer
