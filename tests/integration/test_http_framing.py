"""Framing that a proxy in front could read otherwise is refused with 400, so no request hides in another."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.tls import http_get
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

BODY = json.dumps(request_body(SMALL, b"\x01")).encode()
# A folded header line continues the one before it: "Transfer-Encoding:" then " chunked". Parsers
# that unfold it read a chunked body; those that do not see an empty value and read the rest otherwise.
FOLDED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n"
NEXT = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalServer]:
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL)) as server:
        yield server


def answers(node: LocalServer, request: bytes) -> list[bytes]:
    """The status lines the node writes back to raw ``request`` bytes before it closes the connection."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [line for line in received.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(FOLDED + b"Content-Length: 5\r\n\r\nhello", id="with-content-length"),
        # A valid scrypt request in chunks (a parser that unfolds computes it), then another request.
        pytest.param(FOLDED + b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY) + NEXT, id="chunked"),
    ],
)
def test_a_folded_transfer_encoding_is_a_400_and_nothing_after_it_is_served(node, request_bytes):
    assert answers(node, request_bytes) == [b"HTTP/1.1 400 Bad Request"]
    assert http_get(node.url + "/__lbheartbeat__", timeout=10).status_code == 200
