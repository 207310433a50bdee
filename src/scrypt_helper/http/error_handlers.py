"""Every error leaves as the JSON of ``errors.ApiError``; the handlers also note its errno for the log."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from scrypt_helper.core import errors
from scrypt_helper.core.errors import ApiError

NO_STORE = {"Cache-Control": "no-store"}
ROUTABLE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def error_response(error: ApiError) -> Response:
    """The JSON error body with its Retry-After, never cached."""
    return Response(
        error.encoded_body(),
        status_code=error.status,
        headers={**error.headers(), **NO_STORE},
        media_type="application/json",
    )


async def api_error(request: Request, exc: Exception) -> Response:
    """An error the service raised on purpose (400, 401, 403, 413, 429, 503)."""
    assert isinstance(exc, ApiError)
    request.state.errno = int(exc.errno)
    return error_response(exc)


async def routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 (with ``Allow``), in the service's error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = errors.method_not_allowed()
    elif exc.status_code == 404:
        error = errors.not_found()
    else:
        error = ApiError(exc.status_code, errors.Errno.UNSPECIFIED, str(exc.detail))
    request.state.errno = int(error.errno)
    response = error_response(error)
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


# A fault (any other exception) is answered by http.middleware.faults, inside the middleware.
EXCEPTION_HANDLERS = {ApiError: api_error, HTTPException: routing_error}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (a path may have one route per method)."""
    methods = {"OPTIONS"}  # CORS preflight, answered by the middleware
    for method in ROUTABLE_METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            methods.add(method)
    return sorted(methods)
