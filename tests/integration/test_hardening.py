"""Slow clients, connection floods and response headers that protect the node."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from scrypt_helper.wire import request_body
from tests.conftest import SMALL, allowed_json, local_node


def open_slow_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and then send nothing more (slowloris)."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def test_slow_clients_do_not_stop_a_normal_client_and_are_cut_off():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), read_timeout=2) as node:
        slow = open_slow_connections(node.port, 200)
        try:
            began = time.perf_counter()
            response = httpx.post(node.url + "/", json=request_body(SMALL, b"\x01"), timeout=10)
            assert response.status_code == 200
            assert time.perf_counter() - began < 2.0
            time.sleep(2.5)
            for sock in slow[:20]:
                sock.settimeout(2)
                assert sock.recv(1) == b""  # the node closed it
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
        assert httpx.get(node.url + "/__lbheartbeat__").status_code == 200


def test_connections_over_the_cap_get_a_json_503():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), max_connections=5) as node:
        held = open_slow_connections(node.port, 5)
        try:
            response = httpx.get(node.url + "/__lbheartbeat__")
            assert response.status_code == 503
            assert response.json()["errno"] == 201
            assert response.headers["retry-after"] == "1"
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert httpx.get(node.url + "/__lbheartbeat__").status_code == 200


def test_the_node_never_writes_core_dumps():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL)) as node:
        limits = Path(f"/proc/{node.process.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_hash_workers_run_below_the_event_loop_priority():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), workers=2) as node:
        pid = node.process.pid
        nice = {
            int(task.name): int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
            for task in Path(f"/proc/{pid}/task").iterdir()
        }
    assert nice[pid] == 0  # the main thread runs the event loop
    assert sorted(nice.values()).count(10) == 2  # one per hash worker
