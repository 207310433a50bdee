"""Slow clients, connection floods and response headers that protect the node."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, assert_error, local_node

# Linux routes all of 127.0.0.0/8 to loopback: a client bound here is another address than 127.0.0.1.
OTHER_ADDRESS = "127.0.0.2"


def open_slow_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and then send nothing more (slowloris)."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(ConnectionError):  # the node may have reset it at once (see outcome)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def test_slow_clients_do_not_stop_a_normal_client_and_are_cut_off():
    flags = {"read_timeout": 2, "max_connections_per_client": 200}  # the deadline, not the cap, cuts them
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), **flags) as node:
        slow = open_slow_connections(node.port, 200)
        try:
            began = time.perf_counter()
            with other_client() as client:
                response = client.post(node.url + "/", json=request_body(SMALL, b"\x01"))
            assert response.status_code == 200
            assert time.perf_counter() - began < 2.0
            time.sleep(2.5)
            for sock in slow[:20]:
                sock.settimeout(2)
                assert sock.recv(1) == b""  # the node closed it
            with other_client() as client:  # each cut is counted
                assert rejections(client.get(node.url + "/metrics").text, "read_timeout") >= 200
        finally:
            for sock in slow:
                sock.close()


def test_a_slow_body_is_cut_off_too():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), read_timeout=1) as node:
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        sock.settimeout(3)
        began = time.perf_counter()
        assert sock.recv(4096) == b""
        assert time.perf_counter() - began < 2.5
        sock.close()
        # Bytes that keep coming do not move the deadline: it runs from the request's first byte.
        trickle = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b" " * 40
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        began = time.perf_counter()
        assert not sent_whole(sock, trickle, interval=0.05)  # 90 bytes, one each 50 ms: 4.5 s
        assert time.perf_counter() - began < 2.5
        sock.close()
        assert http_get(node.url + "/__lbheartbeat__").status_code == 200


def sent_whole(sock: socket.socket, data: bytes, interval: float) -> bool:
    """Send ``data`` a byte each ``interval`` seconds; False once the node has closed the connection."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return False
        time.sleep(interval)
    return True


def outcome(sock: socket.socket) -> str:
    """What the node did with a connection: "held" it open, answered "503" and closed, or "reset" it
    unanswered."""
    sock.settimeout(0.5)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return "held"
    except ConnectionResetError:
        return "reset"
    sock.settimeout(5)
    while chunk := sock.recv(4096):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), head
    assert b"\r\ncache-control: no-store\r\n" in head
    assert json.loads(body)["errno"] == 201
    return "503"


def rejections(metrics: str, reason: str) -> float:
    """The node's count of refusals for ``reason``, 0 where it has none."""
    for line in metrics.splitlines():
        if line.startswith(f'scrypt_helper_rejections_total{{reason="{reason}"}} '):
            return float(line.split()[-1])
    return 0.0


def other_client() -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS, verify=shared_tls()), timeout=10
    )


def assert_hash_and_health_checks_answered(client: httpx.Client, url: str) -> None:
    response = client.post(url + "/", json=request_body(SMALL, b"\x05"))
    assert response.status_code == 200, response.text
    expected = hashlib.scrypt(b"\x05", salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen)
    assert response.json() == {"output": expected.hex()}
    assert client.get(url + "/__lbheartbeat__").status_code == 200
    assert client.get(url + "/__heartbeat__").status_code == 200


def test_one_address_holding_all_the_connections_it_can_stops_no_other_client():
    with local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        max_connections=64,
        max_connections_per_client=8,
        read_timeout=60,
    ) as node:
        # More connections than the whole node's cap, all from 127.0.0.1: 8 half-sent requests, then
        # connections that send nothing (a request sent to a reset socket would report the reset).
        attack = open_slow_connections(node.port, 8)
        attack += [socket.create_connection(("127.0.0.1", node.port), timeout=5) for _ in range(72)]
        try:
            # 8 held, the next 8 answered (then read until the client closes), the rest reset.
            assert Counter(outcome(sock) for sock in attack) == {"held": 8, "503": 8, "reset": 64}
            with other_client() as client:
                assert_hash_and_health_checks_answered(client, node.url)
                metrics = client.get(node.url + "/metrics").text
            assert rejections(metrics, "client_cap") == 8
            assert rejections(metrics, "client_cap_reset") == 64
        finally:
            for sock in attack:
                sock.close()


def test_behind_trusted_proxies_the_proxy_is_not_cut_off_and_health_checks_pass_the_cap():
    # The peer is the proxy: the per-client cap is off, and the node's cap alone applies.
    with local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        trusted_proxies=1,
        max_connections=8,
        max_connections_per_client=2,
        read_timeout=60,
        processes=1,  # one process's cap: several would each hold their share of 8
    ) as node:
        held = open_slow_connections(node.port, 8)
        try:
            assert {outcome(sock) for sock in held} == {"held"}
            # Beyond the cap, any request but a health check gets the JSON 503 ...
            response = http_post(node.url + "/", json=request_body(SMALL, b"\x05"))
            assert_error(response, 503, 201)
            assert response.headers["retry-after"] == "1"
            assert {"date", "vary", "x-request-id", "x-content-type-options"} <= set(response.headers)
            # ... as soon as its request line is known, however slowly the rest comes.
            slow = open_slow_connections(node.port, 1)[0]
            assert outcome(slow) == "503"
            slow.close()
            # Health checks are answered as usual, on fresh and on reused connections.
            with httpx.Client(timeout=10, verify=shared_tls()) as client:
                for _ in range(3):
                    assert client.get(node.url + "/__lbheartbeat__").status_code == 200
                    assert client.head(node.url + "/__heartbeat__").status_code == 200
                assert_error(client.get(node.url + "/"), 503, 201)
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert http_post(node.url + "/", json=request_body(SMALL, b"\x05")).status_code == 200


def test_kubelet_probes_on_the_metrics_port_pass_while_the_service_port_is_full():
    metrics_port = free_port()
    with local_node(
        engine="hashlib", allowed_params=allowed_json(SMALL), metrics_port=metrics_port, max_connections=4
    ) as node:
        held = open_slow_connections(node.port, 4)
        try:
            assert_error(http_get(node.url + "/"), 503, 201)
            private = f"http://127.0.0.1:{metrics_port}"
            heartbeat = http_get(private + "/__heartbeat__")
            assert heartbeat.status_code == 200
            assert heartbeat.json()["status"] == "ok"
            assert http_get(private + "/__lbheartbeat__").json() == {"status": "ok"}
            assert "scrypt_helper_workers" in http_get(private + "/metrics").text
        finally:
            for sock in held:
                sock.close()


def test_websocket_upgrades_are_plain_requests_and_leak_no_connection():
    upgrade = (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with local_node(
        engine="hashlib", allowed_params=allowed_json(SMALL), max_connections_per_client=2
    ) as node:
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
                sock.sendall(upgrade)
                assert not sock.recv(4096).startswith(b"HTTP/1.1 101 ")
        time.sleep(0.2)
        # Every one of those connections was released: this address is under its cap of 2.
        assert http_get(node.url + "/__lbheartbeat__").status_code == 200


def test_the_node_never_writes_core_dumps():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL)) as node:
        limits = Path(f"/proc/{node.process.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def thread_niceness(pid: int) -> dict[int, int]:
    return {
        int(task.name): int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


@pytest.mark.parametrize(("flags", "workers_nice"), [({}, 5), ({"worker_niceness": 12}, 12)])
def test_hash_workers_run_below_the_event_loop_priority(flags: dict[str, int], workers_nice: int):
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), workers=2, **flags) as node:
        nice = thread_niceness(node.process.pid)
        assert nice[node.process.pid] == 0  # the main thread runs the event loop
    assert sorted(nice.values()).count(workers_nice) == 2  # one per hash worker
