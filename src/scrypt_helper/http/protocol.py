"""uvicorn's HTTP protocol held to HTTP: bounded heads, a read deadline, connection caps, early admission.

- A request's head (request line and headers) larger than ``max_header_bytes`` is answered 431
  and the connection closed, before the parser copies more of it.
- A client must send its request line, headers and body within ``read_timeout`` seconds of
  starting them (slowloris clients are disconnected).
- A node serves at most ``max_connections`` connections; a connection beyond them is answered a
  JSON 503 as soon as its request line shows it is not a health check, so load balancers and
  probes still get through. Where the node trusts no proxy, one client (an address, an IPv6 /64)
  holds at most ``max_per_client`` connections: its next ones get the 503 at once, and beyond
  twice that many they are reset unanswered.
- Trailers of a chunked body are dropped: they never become request headers.
- ``POST /`` is judged by early admission (``http.protocol_admission``) as its head and then its body come.
- Every refusal written here is counted, logged under the refusal budget and encoded with the
  headers of every other answer (``http.edge``). Each response leaves in one write
  (``whole_responses``).

``GuardedHttpProtocol`` is a plain subclass of uvicorn's ``HttpToolsProtocol``; what it shares
with the node's other connections is the ``ConnectionLimits`` it is given. Every private member
of uvicorn it uses is listed, with its call shape, in ``tests/unit/test_uvicorn_contract.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from scrypt_helper.core import errors
from scrypt_helper.http.admission import Admitted, RequestHead, Ticket
from scrypt_helper.http.edge import RESET, TIMED_OUT, EdgeRefusals
from scrypt_helper.http.handoff import DECISION, REQUEST_ID
from scrypt_helper.http.protocol_admission import EarlyAdmission
from scrypt_helper.http.whole_responses import WholeResponseTransport

# SO_LINGER on, with no time to linger: closing the socket sends a reset, whether or not the
# client's request has arrived yet (a plain close before it has would look like an orderly end).
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# Answered beyond the cap too: a node busy with connections is not a dead node.
HEALTH_CHECK_PATHS = frozenset({b"/__lbheartbeat__", b"/__heartbeat__"})
# nginx's own default for a request's head (large_client_header_buffers: 8 KiB).
MAX_HEADER_BYTES = 8192
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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


@dataclass(eq=False)
class ConnectionLimits:
    """The limits of one server's connections, and the state they share to enforce them.

    ``max_per_client`` is None where the socket peers are trusted proxies: cutting one off would
    cut off every client behind it, so the proxy's own per-client limit does that job."""

    read_timeout: float
    max_connections: int
    max_per_client: int | None = None
    max_header_bytes: int = MAX_HEADER_BYTES
    admitted: set[GuardedHttpProtocol] = field(default_factory=set)  # within max_connections
    per_client: Counter[str] = field(default_factory=Counter)  # open connections by client


def protocol_factory(
    limits: ConnectionLimits, edge: EdgeRefusals, early_admission: EarlyAdmission | None = None
) -> Callable[..., GuardedHttpProtocol]:
    """What uvicorn's ``Config(http=...)`` takes: it builds one protocol per connection."""
    return functools.partial(GuardedHttpProtocol, limits=limits, edge=edge, early_admission=early_admission)


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection, its requests read under ``limits`` and ``POST /`` judged by ``early_admission``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
        edge: EdgeRefusals,
        early_admission: EarlyAdmission | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.edge = edge
        self.early_admission = early_admission
        self.deadline: asyncio.TimerHandle | None = None  # the read deadline, while it runs
        self.client_key: str | None = None  # counted in limits.per_client
        self.refused = False  # answered the cap's 503 or reset: nothing more is read
        self.reading = False  # a request has begun and is not complete: the read deadline applies
        self.in_head = True  # the next bytes read belong to a request's head
        self.head_bytes = 0  # bytes of the current head read so far
        self.headers_done = False  # this request's headers are complete: later fields are trailers
        self.request_head: RequestHead | None = None  # a POST / early admission judges
        self.ticket: Ticket | None = None  # early admission holds this request's body, to judge it whole
        self.held = bytearray()
        self.answered = False  # early admission answered this request; the rest of it is dropped

    # -- the connection ---------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(WholeResponseTransport(transport, self.loop))  # type: ignore[arg-type]
        limits = self.limits
        if limits.max_per_client is not None and self.client is not None:
            self.client_key = client_key(self.client[0])
            limits.per_client[self.client_key] += 1
            held = limits.per_client[self.client_key]
            if held > 2 * limits.max_per_client:
                # Far over its share: reset unanswered, so one client's sockets stay bounded.
                self.refused = True
                self.edge.record(RESET, "client_cap_reset")
                reset(transport)
                return
            if held > limits.max_per_client:
                self._refuse("client_cap")
                return
        if len(limits.admitted) < limits.max_connections:
            limits.admitted.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.limits.admitted.discard(self)
        if self.client_key is not None:
            per_client = self.limits.per_client
            per_client[self.client_key] -= 1
            if not per_client[self.client_key]:
                del per_client[self.client_key]
            self.client_key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; while a head is being read, no more of it than the limit allows."""
        if self.refused:
            return
        self._unset_keepalive_if_required()
        limit = self.limits.max_header_bytes
        if not self.in_head or len(data) <= limit - self.head_bytes:  # the usual case: feed it whole
            self.head_bytes += len(data) if self.in_head else 0
            if self._feed(data) and self.reading and self.deadline is None:
                self._arm()
            return
        view = memoryview(data)
        while view and not self.transport.is_closing():
            if self.in_head:
                if self.head_bytes >= limit:
                    self._head_too_large()
                    return
                piece, view = view[: limit - self.head_bytes], view[limit - self.head_bytes :]
                self.head_bytes += len(piece)
            else:
                piece, view = view, view[len(view) :]
            if not self._feed(bytes(piece)):
                return
        # A request still incomplete once these bytes are read gets its deadline now; one that
        # came whole in one read, the usual case, never needs a timer.
        if self.reading and self.deadline is None:
            self._arm()

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False once the parser can read no more of this connection."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse_unparsable()
            return False
        except httptools.HttpParserUpgrade:
            # No protocol to switch to: the request is served as a plain one (its answer ends the
            # connection), and whatever follows its head is never read.
            self.edge.metrics.count_rejection("upgrade")
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
            else:
                self.transport.close()
            return False
        return True

    # -- the parser's callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A request has begun: no keep-alive timer runs under it (an earlier answer may have
        # started one in this same read), and the idle connection's deadline gives way to its own.
        self._unset_keepalive_if_required()
        self._disarm()
        self.reading = True
        self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a trailer, after a chunked body: never a request header
        # Beyond the cap, a request is served only if it is a health check. Its URL is
        # complete at its first header (or at the end of headers, if it has none).
        if self._may_proceed():
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.in_head, self.head_bytes = False, 0
        if not self._may_proceed():
            return
        if self.early_admission is not None and self._early_admission_decides(self.early_admission):
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.refused or self.answered:
            return
        if self.ticket is not None:
            self.held += body
            if len(self.held) > self.early_admission.max_body_bytes:  # type: ignore[union-attr]
                self._answer(self.early_admission.too_large(self.ticket))  # type: ignore[union-attr]
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.in_head, self.head_bytes = True, 0
        if self.refused:
            return
        self.reading = False
        self._disarm()
        if self.ticket is not None:
            ticket, body = self.ticket, bytes(self.held)
            self.ticket, self.held = None, bytearray()
            outcome = self.early_admission.body(ticket, body)  # type: ignore[union-attr]
            if not isinstance(outcome, bytes):
                self._hand_on(outcome, ticket.head, body)
                return
            self._answer(outcome)
        if self.answered:
            self.answered = False
            if not self.transport.is_closing():
                self.on_response_complete()  # keep-alive timer, or the next request
            return
        super().on_message_complete()

    # -- early admission -------------------------------------------------------------------------------------

    def _early_admission_decides(self, early_admission: EarlyAdmission) -> bool:
        """Let early admission judge a ``POST /`` from its head. True: it answered, or holds the body to
        judge it whole. False: serve the request the usual way (early admission may have handed on its
        judgement in the request's scope). Early admission steps aside while an earlier answer is on its
        way (pipelined answers keep their order), and for HTTP/1.0, ``Connection: close`` and
        upgrades, whose connections it would not keep."""
        parser = self.parser
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            return False
        if parser.get_method() != b"POST" or self.url != b"/":
            return False
        if parser.get_http_version() != "1.1" or not parser.should_keep_alive() or parser.should_upgrade():
            return False
        head, outcome = early_admission.head(self.headers, self.client[0] if self.client else None)
        self.scope["state"][REQUEST_ID] = head.request_id
        if isinstance(outcome, bytes):
            self._answer(outcome, close=head.expects_continue)
            return True
        if isinstance(outcome, Ticket):
            self.ticket = outcome
            if head.expects_continue:  # the body is welcome: ask for it, once
                self.transport.write(CONTINUE)
                self.expect_100_continue = False
            return True
        self.scope["state"][DECISION] = outcome  # a judgement that waits: the endpoint awaits it
        return False

    def _hand_on(self, decision: Admitted | asyncio.Task[Any], head: RequestHead, body: bytes) -> None:
        """Serve a request whose body early admission held, with its judgement, as if it had just come."""
        self.scope["state"][DECISION] = decision
        super().on_headers_complete()
        if body:
            super().on_body(body)
        super().on_message_complete()

    def _answer(self, answer: bytes, *, close: bool = False) -> None:
        """Write early admission's answer; what is left of the request is dropped as it comes, or, with
        ``close`` (the answer says so), the connection closes."""
        self.ticket, self.held = None, bytearray()
        self.answered = True
        self.transport.write(answer)
        if close:
            self.transport.close()

    # -- refusals below the app -------------------------------------------------------------------------

    def _may_proceed(self) -> bool:
        if (
            not self.refused
            and self not in self.limits.admitted
            and httptools.parse_url(self.url).path not in HEALTH_CHECK_PATHS
        ):
            self._refuse("over_capacity")
        return not self.refused

    def _refuse(self, reason: str) -> None:
        """Answer the JSON 503 and stop writing; then drop what the client still sends until it
        closes, or until the read deadline. Closing with its request unread would reset the
        connection, and the client could lose the answer."""
        self.refused = True
        if not self.transport.is_closing():
            error = errors.service_unavailable("too many open connections", 1, reason)
            self.transport.write(self.edge.answer(error))
            self.transport.write_eof()
        self._arm()

    def _refuse_unparsable(self) -> None:
        """The parser's 400, in the error shape with every header, and the connection closed."""
        self.refused = True
        if not self.transport.is_closing():
            self.transport.write(self.edge.answer(errors.bad_request("bad_request")))
            self.transport.close()

    def _head_too_large(self) -> None:
        """A head over the limit: 431, and the connection closed with the rest unread."""
        self.refused = True
        error = errors.head_too_large(self.limits.max_header_bytes)
        error.reason = "head_too_large"
        self.transport.write(self.edge.answer(error))
        self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(self.limits.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if not self.transport.is_closing():
            if self.reading:
                self.edge.record(TIMED_OUT, "read_timeout")
            self.transport.close()
