"""What each request of a load is: a method and path, a body, and the client it seems to come from.

A ``Requests`` is a plain value, so that a generator in a child process can make its own: a fresh
random input per hash, a fresh client address per request (as a trusted proxy forwards new clients),
or many ordinary users each far below the limits.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Literal

from scrypt_helper.bench.load.http1 import request_bytes
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import request_body

_INPUT = b"0" * 64  # the hex of 32 zero bytes: where a fresh input goes

#: Who each request seems to come from, told by ``X-Forwarded-For`` (the node trusts one proxy hop):
#: ``one`` client (no header unless given), a ``fresh_ipv6`` address of 2001:db8::/32 each time, or
#: ``users``: each request from another address of 10.0.0.0/8 and each of 65,536 requests in a row
#: from another /24, many users each far below the limits, their networks too.
Clients = Literal["one", "fresh_ipv6", "users"]


def random_ipv6(rng: random.Random) -> str:
    """A random address of 2001:db8::/32, all eight groups written out, as fresh clients send."""
    bits = rng.getrandbits(96)
    return "2001:db8:" + ":".join(f"{bits >> shift & 0xFFFF:x}" for shift in range(80, -16, -16))


def user_address(index: int) -> str:
    """The ``index``-th ordinary user's address (``users``), from 1."""
    return f"10.{index >> 8 & 255}.{index & 255}.{1 + (index >> 16) % 254}"


@dataclass(frozen=True, slots=True)
class Requests:
    """Requests to ``host``:``port``: ``POST path`` with ``body`` (``GET`` when None) and ``headers``;
    with ``fresh_input``, a random 32-byte input in place of the body's placeholder."""

    host: str
    port: int
    body: bytes | None = None
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    fresh_input: bool = False
    clients: Clients = "one"

    def make(self, rng: random.Random, index: int) -> bytes:
        """The ``index``-th request (from 1)."""
        body = self.body
        if self.fresh_input and body is not None:
            body = body.replace(_INPUT, b"%064x" % rng.getrandbits(256), 1)
        headers = dict(self.headers)
        if self.clients == "fresh_ipv6":
            headers["X-Forwarded-For"] = random_ipv6(rng)
        elif self.clients == "users":
            headers["X-Forwarded-For"] = user_address(index)
        return request_bytes(self.host, self.port, body, headers, path=self.path)


def hash_requests(host: str, port: int, params: ScryptParams, *, clients: Clients = "one") -> Requests:
    """Valid hash requests for ``params``, each for a fresh random input."""
    body = json.dumps(request_body(params, bytes(32))).encode()
    if body.count(_INPUT) != 1:
        raise ValueError("the salt must not contain the input placeholder")
    return Requests(host, port, body, fresh_input=True, clients=clients)


def get(host: str, port: int, path: str, *, clients: Clients = "one") -> Requests:
    """``GET path``, e.g. a health check."""
    return Requests(host, port, None, path=path, clients=clients)
