"""uvicorn's HTTP protocol with a request-read deadline and connection caps.

A client must send its request line, headers and body within ``read_timeout`` seconds
of starting them (slowloris clients are disconnected). A node serves at most
``max_connections`` connections; a connection beyond them is answered a JSON 503 as soon
as its request line shows it is not a health check, so load balancers and probes still
get through. Where the node trusts no proxy, one client (an address, an IPv6 /64) holds
at most ``max_per_client`` connections: its next ones get the 503 at once, and beyond twice
that many they are reset unanswered. Each response leaves in one write (``whole_responses``).
A refusal of ``/`` that its headers decide is answered here, below ASGI (``door``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import struct
from collections import Counter
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scrypt_helper import errors
from scrypt_helper.scheduler import Place
from scrypt_helper.web.door import Door, Pending
from scrypt_helper.web.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper.web.scrypt import PROMISED
from scrypt_helper.web.whole_responses import WholeResponseTransport


def _overloaded_response() -> bytes:
    """Written below ASGI, so it carries by itself what the middleware adds to every other answer."""
    error = errors.service_unavailable("too many open connections", 1)
    body = json.dumps(error.body()).encode()
    headers = {
        "content-type": "application/json",
        **SECURITY_HEADERS,
        **error.headers(),
        "connection": "close",
        "content-length": str(len(body)),
    }
    lines = [
        "HTTP/1.1 503 Service Unavailable",
        *(f"{name.lower()}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join([*lines, "", ""]).encode() + body


OVERLOADED_RESPONSE = _overloaded_response()


# SO_LINGER on, with no time to linger: closing the socket sends a reset, whether or not the
# client's request has arrived yet (a plain close before it has would look like an orderly end).
RESET_ON_CLOSE = struct.pack("ii", 1, 0)

# Answered beyond the cap too: a node busy with connections is not a dead node.
HEALTH_CHECK_PATHS = frozenset({b"/__lbheartbeat__", b"/__heartbeat__"})


def client_key(host: str) -> str:
    """Whose connection this is: the IPv4 address, or the /64 of an IPv6 one (one subscriber's)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 4:
        return host
    if address.ipv4_mapped is not None:  # a dual-stack socket's IPv4 client
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def reset(transport: Any) -> None:
    """Drop a connection with a TCP reset, its socket's resources freed at once (no FIN_WAIT)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    transport.abort()


def guarded_protocol(
    read_timeout: float, max_connections: int, max_per_client: int | None = None, door: Door | None = None
) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol subclass enforcing these limits (uvicorn builds one per connection).

    ``max_per_client`` is None where the socket peers are trusted proxies: cutting one off
    would cut off every client behind it, so the proxy's own per-client limit does that job.
    ``door`` may answer a request from its headers (``web.door``); its body is then dropped unread.
    """
    admitted: set[HttpToolsProtocol] = set()  # the connections within max_connections
    per_client: Counter[str] = Counter()  # open connections of each client (max_per_client only)

    class GuardedHttpProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _client_key: str | None = None
        _refused = False
        _answered = False  # this request was answered by the door; its body is being dropped
        _pending: Pending | None = None  # the door holds this request's body, to judge it whole
        _reading = False  # a request has begun and is not complete: the read deadline applies
        _held: bytearray  # per connection, made in connection_made

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            self._held = bytearray()
            super().connection_made(WholeResponseTransport(transport, self.loop))  # type: ignore[arg-type]
            if max_per_client is not None and self.client is not None:
                self._client_key = client_key(self.client[0])
                per_client[self._client_key] += 1
                held = per_client[self._client_key]
                if held > 2 * max_per_client:
                    # Far over its share: reset unanswered, so one client's sockets stay bounded.
                    self._refused = True
                    reset(transport)
                    return
                if held > max_per_client:
                    self._refuse()
                    return
            if len(admitted) < max_connections:
                admitted.add(self)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            # A request still incomplete once these bytes are read gets its deadline now; one that
            # came whole in one read, the usual case, never needs a timer.
            if self._reading and self._deadline is None:
                self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._disarm()  # the idle connection's deadline gives way to this request's
            self._reading = True

        # Beyond the cap, a request is served only if it is a health check. Its URL is
        # complete at its first header (or at the end of headers, if it has none).
        def on_header(self, name: bytes, value: bytes) -> None:
            if self._may_proceed():
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if not self._may_proceed():
                return
            if door is not None and self._door_decides():
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self._refused or self._answered:
                return
            if self._pending is not None:
                self._held += body
                if len(self._held) > door.max_body_bytes:  # type: ignore[union-attr]
                    self._answer(door.too_large(self._pending))  # type: ignore[union-attr]
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            if self._refused:
                return
            self._reading = False
            self._disarm()
            if self._pending is not None:
                pending, body = self._pending, bytes(self._held)
                self._pending, self._held = None, bytearray()
                verdict = door.judge_body(pending, body)  # type: ignore[union-attr]
                if isinstance(verdict, Place):  # a valid request: on to the app, as if it had just come
                    self.scope["state"][PROMISED] = verdict  # admitted: its place in the queue is kept
                    super().on_headers_complete()
                    if body:
                        super().on_body(body)
                    super().on_message_complete()
                    return
                self._answer(verdict)
            if self._answered:
                self._answered = False
                self.on_response_complete()  # keep-alive timer, the next request
                return
            super().on_message_complete()

        def _door_decides(self) -> bool:
            """Let the door refuse the request now, or hold its body to judge it with, if no earlier
            answer is still on its way (pipelined answers keep their order) and the client keeps
            the connection. False: serve it the usual way."""
            if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
                return False
            if self.parser.get_http_version() != "1.1" or not self.parser.should_keep_alive():
                return False
            peer = self.client[0] if self.client else None
            verdict = door.refusal(self.parser.get_method(), self.url, self.headers, peer)  # type: ignore[union-attr]
            if verdict is None:
                return False
            if isinstance(verdict, bytes):
                self._answer(verdict)
            else:
                self._pending = verdict
            return True

        def _answer(self, answer: bytes) -> None:
            """Write the door's answer; what is left of the request is dropped as it comes."""
            self._pending, self._held = None, bytearray()
            self._answered = True
            self.transport.write(answer)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            admitted.discard(self)
            if self._client_key is not None:
                per_client[self._client_key] -= 1
                if not per_client[self._client_key]:
                    del per_client[self._client_key]
                self._client_key = None
            super().connection_lost(exc)

        def _may_proceed(self) -> bool:
            if (
                not self._refused
                and self not in admitted
                and httptools.parse_url(self.url).path not in HEALTH_CHECK_PATHS
            ):
                self._refuse()
            return not self._refused

        def _refuse(self) -> None:
            """Answer the JSON 503 and stop writing; then drop what the client still sends until it
            closes, or until the read deadline. Closing with its request unread would reset the
            connection, and the client could lose the answer."""
            self._refused = True
            if not self.transport.is_closing():
                self.transport.write(OVERLOADED_RESPONSE)
                self.transport.write_eof()
            self._arm()

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
