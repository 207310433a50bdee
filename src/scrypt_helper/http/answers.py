"""The one encoder of the node's answers' headers, and of every refusal.

Every refusal, whoever writes it (early admission below ASGI, the endpoint of ``/``, the connection caps,
the HTTP parser's errors), carries the same headers: ``Content-Type``, the security headers and
``Cache-Control``, ``Date``, ``Vary``, ``X-Request-Id``, ``Retry-After`` when there is one, and
CORS for a browser's allowed origin. Below ASGI the whole answer is written here
(``RefusalEncoder``); through ASGI the endpoint sends ``refusal_headers`` and the middleware adds
nothing it already has.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Sequence
from http import HTTPStatus

from scrypt_helper.core.errors import ApiError

Header = tuple[bytes, bytes]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # Answers come from secrets, and a cached health check would hide a draining node.
    "Cache-Control": "no-store",
}
ENCODED_SECURITY_HEADERS: tuple[Header, ...] = tuple(
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
)
JSON = (b"content-type", b"application/json")
# Answers of ``/`` differ by the browser's origin (CORS), whether or not this request sent one.
VARY = (b"vary", b"Origin")
# A cross-origin page reads only the headers listed here: Retry-After to wait as told, the request
# id to quote in a report.
EXPOSED_HEADERS = "Retry-After, X-Request-Id"
CLOSE = (b"connection", b"close")
# Answers kept half-encoded, by status, message and Retry-After: a ban's 429 for each second it
# still has to run makes the most of them; past this many, the table starts over.
MAX_ENCODED = 256


class HttpDate:
    """The ``Date`` header's value, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode()
        return self._value


http_date = HttpDate()


def cors_headers(origin: bytes | None, allowed_origins: Sequence[str]) -> list[Header]:
    """What a browser's request needs to read the answer: its origin allowed, the headers exposed."""
    if origin is None:
        return []
    headers = [(b"access-control-expose-headers", EXPOSED_HEADERS.encode())]
    if "*" in allowed_origins:
        headers.append((b"access-control-allow-origin", b"*"))
    elif origin.decode("latin-1") in allowed_origins:
        headers.append((b"access-control-allow-origin", origin))
    return headers


def answer_headers(request_id: str, cors: list[Header] | None = None) -> list[Header]:
    """The headers every answer of ``/`` carries, whatever its status."""
    return [
        *ENCODED_SECURITY_HEADERS,
        (b"date", http_date.now()),
        VARY,
        (b"x-request-id", request_id.encode("ascii")),
        *(cors or ()),
    ]


def error_headers(error: ApiError) -> list[Header]:
    """The headers that depend on the error: its type, and Retry-After when it has one."""
    return [JSON, *((name.lower().encode(), value.encode()) for name, value in error.headers().items())]


def refusal_headers(
    error: ApiError, request_id: str, cors: list[Header] | None = None, *, close: bool = False
) -> list[Header]:
    """Every header of a refusal (its ``Content-Length`` aside); ``close``: the connection ends."""
    return [*error_headers(error), *answer_headers(request_id, cors), *((CLOSE,) if close else ())]


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())


class RefusalEncoder:
    """Whole HTTP/1.1 refusals, for the layers below ASGI; the parts that never change per error
    are encoded once."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[int, str, float | None], tuple[bytes, bytes]] = {}

    def encode(
        self, error: ApiError, request_id: str, cors: list[Header] | None = None, *, close: bool = False
    ) -> bytes:
        """The whole answer: status line, headers, JSON body."""
        key = (error.status, error.message, error.retry_after and math.ceil(error.retry_after))
        parts = self._encoded.get(key)
        if parts is None:
            if len(self._encoded) >= MAX_ENCODED:
                self._encoded.clear()
            body = error.encoded_body()
            head = status_line(error.status) + _lines(error_headers(error), ENCODED_SECURITY_HEADERS, [VARY])
            parts = self._encoded[key] = (head, b"content-length: %d\r\n\r\n%s" % (len(body), body))
        head, tail = parts
        varying = b"date: %s\r\nx-request-id: %s\r\n" % (http_date.now(), request_id.encode("ascii"))
        if cors or close:
            varying += _lines(cors or (), [CLOSE] if close else [])
        return head + varying + tail


def _lines(*groups: Sequence[Header]) -> bytes:
    return b"".join(b"%s: %s\r\n" % pair for group in groups for pair in group)
