"""A fault in a route becomes the JSON 500 (errno 999) inside the middleware stack.

Starlette answers unhandled exceptions in its outermost layer, outside every middleware
that adds headers or logs; raised here instead, the 500 passes through them all like any
other error: security headers, CORS, ``Cache-Control: no-store``, and ``errno`` in the
request summary. The exception is then raised on, so that the server logs its traceback.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper.core import errors
from scrypt_helper.http.error_handlers import error_response


class FaultMiddleware:
    """Answer an exception escaping the app with ``errors.unspecified()``, never its text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:  # part of an answer has gone: only closing the connection is left
                raise
            error = errors.unspecified()
            scope.setdefault("state", {})["errno"] = int(error.errno)
            await error_response(error)(scope, receive, send)
            raise
