"""HTTP where a careful server must get it right, on raw sockets against a real node: bounded heads,
trailers, ``Expect: 100-continue``, and refusals below the app with every header and counted."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper.http.middleware.security_headers import SECURITY_HEADERS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node

BODY = json.dumps(request_body(SMALL, b"\x01")).encode()
EVERY_REFUSAL = {*(name.lower() for name in SECURITY_HEADERS), "date", "vary", "x-request-id", "content-type"}
DENIED = "9.9.9.9"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalServer]:
    # One trusted proxy: the client is the last X-Forwarded-For address; DENIED is on the deny list.
    with local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        trusted_proxies=1,
        denylist=f"{DENIED}/32",
        refusal_log_rate=5,
        processes=1,
    ) as server:
        yield server


def connect(node: LocalServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", node.port), timeout=10)


def read_answer(sock: socket.socket, buffered: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One answer from ``sock`` (bytes read past it stay in ``buffered``)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {bytes(buffered)!r}")
        buffered += chunk
    end = buffered.index(b"\r\n\r\n")
    status_line, *lines = buffered[:end].decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    length = int(headers.get("content-length", 0))
    del buffered[: end + 4]
    while len(buffered) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside an answer")
        buffered += chunk
    body = bytes(buffered[:length])
    del buffered[:length]
    return int(status_line.split()[1]), headers, body


def closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def post_head(extra: str = "", length: int = len(BODY)) -> bytes:
    return f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def test_a_head_over_the_limit_is_431_and_the_connection_closes(node):
    with connect(node) as sock:
        sock.sendall(post_head("X-Big: " + "a" * 9000 + "\r\n"))
        status, headers, body = read_answer(sock, bytearray())
        assert (status, json.loads(body)["errno"]) == (431, 431)
        assert set(headers) >= EVERY_REFUSAL
        assert closed(sock)
    with connect(node) as sock:  # just under the limit: served
        sock.sendall(post_head("X-Big: " + "a" * 7900 + "\r\n") + BODY)
        assert read_answer(sock, bytearray())[0] == 200


def stream_a_header(node: LocalServer, size: int, results: list[float]) -> None:
    """One header value sent a KiB at a time until the node stops reading; seconds it took."""
    began = time.perf_counter()
    with connect(node) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        piece = b"a" * 1024
        try:
            for _ in range(size // len(piece)):
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    results.append(time.perf_counter() - began)


def test_heads_streamed_without_end_cost_neither_memory_nor_the_heartbeat(node):
    before = node.rss_bytes()
    results: list[float] = []
    streams = [threading.Thread(target=stream_a_header, args=(node, 8 << 20, results)) for _ in range(32)]
    for thread in streams:
        thread.start()
    latencies = []
    with httpx.Client(base_url=node.url, timeout=10, verify=shared_tls()) as client:
        while any(thread.is_alive() for thread in streams):
            began = time.perf_counter()
            assert client.get("/__lbheartbeat__").status_code == 200
            latencies.append(time.perf_counter() - began)
            time.sleep(0.01)
    for thread in streams:
        thread.join()
    assert max(results) < 5  # each cut off at its first KiBs, not read to its 8 MiB
    assert node.rss_bytes() - before <= 16 << 20
    if latencies:
        assert sorted(latencies)[int(len(latencies) * 0.99)] <= 0.05


def chunked(body: bytes, trailers: str) -> bytes:
    return b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailers.encode())


def test_a_trailer_never_becomes_a_request_header(node):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
    with connect(node) as sock:
        # A proxy that forwards trailers passes the client's: as a header it would make the
        # client DENIED (403); as a trailer it is nothing.
        sock.sendall(head + chunked(BODY, f"X-Forwarded-For: {DENIED}\r\n"))
        status, _, body = read_answer(sock, bytearray())
        assert status == 200, body
    # The same address as a header is denied: the test would see it.
    denied = http_post(node.url + "/", content=BODY, headers={"X-Forwarded-For": DENIED})
    assert denied.status_code == 403


def test_expect_100_continue_is_answered_before_the_body(node):
    with connect(node) as sock:
        sock.sendall(post_head("Expect: 100-continue\r\n"))
        sock.settimeout(0.5)
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.settimeout(10)
        sock.sendall(BODY)
        assert read_answer(sock, bytearray())[0] == 200


def test_expect_100_continue_refused_from_its_head_gets_no_100_and_the_connection_closes(node):
    with connect(node) as sock:
        sock.sendall(post_head("Expect: 100-continue\r\n", length=5000))  # over --max-body-bytes
        sock.settimeout(0.5)
        status, headers, _ = read_answer(sock, bytearray())
        assert status == 413
        assert headers["connection"] == "close"
        assert closed(sock)


def test_a_door_answer_carries_every_header_and_the_clients_request_id(node):
    with connect(node) as sock:
        sock.sendall(post_head("X-Request-Id: client-chosen.1\r\n", length=2) + b"{}")
        status, headers, _ = read_answer(sock, bytearray())
        assert status == 400
        assert set(headers) >= EVERY_REFUSAL
        assert headers["x-request-id"] == "client-chosen.1"


def test_the_parsers_400_is_json_with_every_header_counted_and_logged_within_budget(node):
    time.sleep(1.1)  # a second of its own: the budget's count starts afresh
    for _ in range(40):
        with connect(node) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            status, headers, body = read_answer(sock, bytearray())
            assert (status, json.loads(body)["errno"], headers["content-type"]) == (
                400,
                400,
                "application/json",
            )
            assert set(headers) >= EVERY_REFUSAL
            assert closed(sock)
    metrics = http_get(node.url + "/metrics").text
    assert 'scrypt_helper_rejections_total{reason="bad_request"} 40.0' in metrics
    time.sleep(1.2)  # the second's count is logged when it ends
    records = [json.loads(line) for line in node.logs().splitlines() if line.startswith("{")]
    lines = [
        r for r in records if r["Type"] == "request.summary" and r["Fields"].get("reason") == "bad_request"
    ]
    assert 1 <= len(lines) <= 10  # within --refusal-log-rate 5 a second, the rest counted
    assert all(line["Fields"]["rid"] for line in lines)
    assert not [r for r in records if "Invalid HTTP request" in json.dumps(r)]


def test_a_door_answer_does_not_close_the_connection_under_the_next_pipelined_request(node):
    """uvicorn closes a connection idle for 5 s after an answer; the request after it is not idle."""
    with connect(node) as sock:
        # A refusal early admission answers, then a request whose body is on its way for longer than 5 s.
        sock.sendall(post_head(length=2) + b"{}" + post_head() + BODY[:10])
        buffered = bytearray()
        assert read_answer(sock, buffered)[0] == 400
        time.sleep(6)
        sock.sendall(BODY[10:])
        assert read_answer(sock, buffered)[0] == 200
