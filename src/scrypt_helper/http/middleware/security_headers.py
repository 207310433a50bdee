"""Security headers and ``Date`` on every response the app sends, errors included, and no caching of any."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scrypt_helper.http.answers import ENCODED_SECURITY_HEADERS, SECURITY_HEADERS, http_date

__all__ = ["SECURITY_HEADERS", "SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """Add ``SECURITY_HEADERS`` and ``Date`` to every HTTP response, keeping any a route set itself.

    ``Date`` is added here rather than by uvicorn, so that an answer written whole by
    ``http.answers`` (the endpoint of ``/``) carries one, and only one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                added = [pair for pair in ENCODED_SECURITY_HEADERS if pair[0] not in present]
                if b"date" not in present:
                    added.append((b"date", http_date.now()))
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
