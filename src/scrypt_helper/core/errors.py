"""The error catalogue: every error the API returns, in the Firefox Accounts JSON shape."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any


class Errno(int, Enum):
    """Stable error numbers; the README lists each with its status and meaning."""

    INVALID_JSON = 106
    INVALID_PARAMETER = 107
    MISSING_PARAMETER = 108
    INVALID_API_KEY = 110
    BODY_TOO_LARGE = 113
    TOO_MANY_REQUESTS = 114
    REQUEST_BLOCKED = 125
    SERVICE_UNAVAILABLE = 201
    ORIGIN_NOT_ALLOWED = 403
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    INVALID_REQUEST = 400
    UNSUPPORTED_MEDIA_TYPE = 415
    HEAD_TOO_LARGE = 431
    UNSPECIFIED = 999


#: JSON Schema of every error body (see ``ApiError.body``).
ERROR_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "errno", "error", "message"],
    "properties": {
        "code": {"type": "integer"},
        "errno": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
    },
}


@dataclass(eq=False)
class ApiError(Exception):
    """An error response: HTTP status, errno, message and an optional Retry-After; ``reason``, never
    sent, names its cause for the log and the metrics (a rule's label, a scheduler's refusal)."""

    status: int
    errno: Errno
    message: str
    retry_after: float | None = None
    reason: str | None = None

    def body(self) -> dict[str, object]:
        """The JSON body: ``{code, errno, error, message}``."""
        return {
            "code": self.status,
            "errno": int(self.errno),
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
        }

    def encoded_body(self) -> bytes:
        """``body()`` as compact JSON, the bytes every path of the node sends for this error."""
        return json.dumps(self.body(), separators=(",", ":")).encode()

    def headers(self) -> dict[str, str]:
        """Extra response headers (Retry-After in whole seconds, at least 1)."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


def invalid_json(detail: str = "Invalid JSON in request body") -> ApiError:
    return ApiError(400, Errno.INVALID_JSON, detail)


def invalid_parameter(key: str) -> ApiError:
    return ApiError(400, Errno.INVALID_PARAMETER, f"Invalid parameter in request body: {key}")


def missing_parameter(key: str) -> ApiError:
    return ApiError(400, Errno.MISSING_PARAMETER, f"Missing parameter in request body: {key}")


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, Errno.BODY_TOO_LARGE, f"Request body too large (limit {limit} bytes)")


def too_many_requests(retry_after: float, rule: str | None = None) -> ApiError:
    return ApiError(429, Errno.TOO_MANY_REQUESTS, "Client has sent too many requests", retry_after, rule)


def service_unavailable(message: str, retry_after: float, reason: str | None = None) -> ApiError:
    return ApiError(503, Errno.SERVICE_UNAVAILABLE, f"Service unavailable: {message}", retry_after, reason)


def head_too_large(limit: int) -> ApiError:
    return ApiError(431, Errno.HEAD_TOO_LARGE, f"Request head too large (limit {limit} bytes)")


def bad_request(reason: str) -> ApiError:
    """A request the HTTP parser could not read (``reason``: what it was)."""
    return ApiError(400, Errno.INVALID_REQUEST, "Invalid HTTP request", reason=reason)


def invalid_api_key() -> ApiError:
    return ApiError(401, Errno.INVALID_API_KEY, "Invalid API key")


def forbidden() -> ApiError:
    return ApiError(403, Errno.REQUEST_BLOCKED, "The request was blocked")


def origin_not_allowed() -> ApiError:
    return ApiError(403, Errno.ORIGIN_NOT_ALLOWED, "Origin not allowed")


def unsupported_media_type() -> ApiError:
    return ApiError(415, Errno.UNSUPPORTED_MEDIA_TYPE, "A request with an Origin must send application/json")


def not_found() -> ApiError:
    return ApiError(404, Errno.NOT_FOUND, "Not found")


def method_not_allowed() -> ApiError:
    return ApiError(405, Errno.METHOD_NOT_ALLOWED, "Method not allowed")


def unspecified() -> ApiError:
    return ApiError(500, Errno.UNSPECIFIED, "Unspecified error")
