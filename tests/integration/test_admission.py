"""Admission over real HTTP where early admission once differed from the endpoint: a blocked client's flood
still counts, and bursts never overfill the queue."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter

import httpx

from scrypt_helper.bench.tls import http_post, shared_tls
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node


def raw_post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_client_blocked_by_a_scrypt_rule_still_counts_against_the_request_rules():
    rules = "scrypt : ip : 1 : 60s : 60s : block; request : ip : 5 : 60s : 60s : ban"
    with (
        local_node(engine="hashlib", allowed_params=allowed_json(SMALL), rules=rules) as node,
        httpx.Client(base_url=node.url, timeout=10, verify=shared_tls()) as client,
    ):
        body = request_body(SMALL, b"\x01")
        assert client.post("/", json=body).status_code == 200
        # Blocked for hashes from here; each refusal is still a request, and the fifth trips the ban.
        assert [client.post("/", json=body).status_code for _ in range(8)] == [429] * 8
        assert client.get("/").status_code == 429  # banned: not only hashes are refused now
        metrics = client.get("/metrics").text
        assert 'rule="ban:ip"' in metrics or 'policy="ban"' in metrics


def burst(port: int, count: int) -> Counter[int]:
    """``count`` valid requests sent at once on as many connections; their statuses."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    requests = [raw_post(json.dumps(request_body(PICL_PARAMS, os.urandom(32))).encode()) for _ in sockets]
    for sock, request in zip(sockets, requests, strict=True):
        sock.sendall(request)
    statuses: Counter[int] = Counter()
    for sock in sockets:
        with sock:
            statuses[int(sock.recv(4096).split(b" ", 2)[1])] += 1
    return statuses


def test_bursts_never_admit_more_than_the_queue_and_the_worker_hold():
    # One worker, two places: a burst that arrives within one hash gets at most three hashes.
    flags = {"workers": 1, "queue_size": 2, "max_queue_wait": 30, "processes": 1}
    with local_node(engine="hashlib", allowed_params=allowed_json(PICL_PARAMS), **flags) as node:
        for _ in range(3):
            statuses = burst(node.port, 60)
            assert set(statuses) <= {200, 503}
            assert statuses[200] <= 3, statuses


def test_without_early_admission_every_request_is_judged_through_asgi_alike():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), early_admission="false") as node:
        refused = http_post(node.url + "/", content=b"{}", headers={"X-Request-Id": "no-early-admission"})
        assert (refused.status_code, refused.json()["errno"]) == (400, 108)
        assert refused.headers["x-request-id"] == "no-early-admission"
        assert {"date", "vary", "cache-control", "x-content-type-options"} <= set(refused.headers)
        assert http_post(node.url + "/", json=request_body(SMALL, b"\x01")).status_code == 200
