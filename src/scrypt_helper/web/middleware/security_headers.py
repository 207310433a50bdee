"""Security headers on every response the app sends, errors included, and no caching of any."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # Answers come from secrets, and a cached health check would hide a draining node.
    "Cache-Control": "no-store",
}


ENCODED_SECURITY_HEADERS = tuple(
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
)


class SecurityHeadersMiddleware:
    """Add ``SECURITY_HEADERS`` to every HTTP response, keeping any a route set itself."""

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
                message["headers"] = [
                    *headers,
                    *(pair for pair in ENCODED_SECURITY_HEADERS if pair[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
