"""uvicorn's HTTP protocol with a request-read deadline and a connection cap.

A client must send its request line, headers and body within ``read_timeout`` seconds
of starting them (slowloris clients are disconnected), and a node holds at most
``max_connections`` connections: the next one gets an immediate JSON 503.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scrypt_helper import errors


def _overloaded_response() -> bytes:
    error = errors.service_unavailable("too many open connections", 1)
    body = json.dumps(error.body()).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        "cache-control: no-store\r\n"
        "x-content-type-options: nosniff\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


OVERLOADED_RESPONSE = _overloaded_response()


def guarded_protocol(read_timeout: float, max_connections: int) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol subclass enforcing these limits (uvicorn builds one per connection)."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _refuse = False

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._refuse = len(self.server_state.connections) > max_connections
            self._arm()

        def data_received(self, data: bytes) -> None:
            if not self._refuse:
                super().data_received(data)
            elif not self.transport.is_closing():
                self._disarm()
                self.transport.write(OVERLOADED_RESPONSE)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(read_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpProtocol
