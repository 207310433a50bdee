"""Logs are MozLog JSON with a request.summary per request (refusals within a budget a second), and
never contain inputs or outputs."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter

import httpx

from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node


def test_no_input_or_output_in_logs_even_at_debug():
    inputs = [os.urandom(32) for _ in range(3)]
    bad_input = os.urandom(20).hex()
    with local_node(engine="hashlib", log_level="DEBUG", allowed_params=allowed_json(SMALL)) as node:
        outputs = [
            http_post(node.url + "/", json=request_body(SMALL, data)).json()["output"] for data in inputs
        ]
        http_post(node.url + "/", json={**request_body(SMALL, b"\x01"), "input": bad_input, "N": 7})
        http_post(node.url + "/", content=b'{"input": "' + bad_input.encode() + b'", "salt": ')
        http_get(node.url + "/__heartbeat__")
    logs = node.logs()
    expected = [
        hashlib.scrypt(d, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen)
        for d in inputs
    ]
    assert outputs == [e.hex() for e in expected]
    for secret in [*(d.hex() for d in inputs), *outputs, bad_input]:
        assert secret.lower() not in logs.lower()
        assert secret[:16].lower() not in logs.lower()

    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert records
    assert all(r["Logger"] == "scrypt-helper" and r["EnvVersion"] == "2.0" for r in records)
    summaries = [r["Fields"] for r in records if r["Type"] == "request.summary"]
    hashes = [f for f in summaries if f["method"] == "POST" and f["code"] == 200]
    assert len(hashes) == 3
    for fields in hashes:
        assert fields["path"] == "/"
        assert fields["errno"] == 0
        assert fields["hash_ms"] > 0
        assert fields["queue_ms"] >= 0
        assert fields["t"] >= 0
        assert fields["rid"]
    assert sorted(f["errno"] for f in summaries if f["code"] == 400) == [106, 107]


def test_a_flood_of_refusals_is_logged_within_its_budget_and_counted_whole():
    sent = 300
    node = local_node(engine="hashlib", allowed_params=allowed_json(SMALL), refusal_log_rate=20)
    with node, httpx.Client(base_url=node.url, verify=shared_tls()) as client:
        bad = {**request_body(SMALL, b"\x01"), "N": 7}
        statuses = {client.post("/", json=bad).status_code for _ in range(sent)}
        assert client.get("/__heartbeat__").status_code == 200
        metrics = client.get("/metrics").text
    assert statuses == {400}
    assert f'scrypt_helper_requests_total{{method="POST",route="/",status="400"}} {sent}.0' in metrics
    records = [json.loads(line) for line in node.logs().splitlines() if line.startswith("{")]
    refused = [r for r in records if r["Type"] == "request.summary" and r["Fields"]["code"] == 400]
    told = [r["Fields"] for r in records if r["Type"] == "request.refusals"]
    assert told, "the refusals beyond the budget are told in a request.refusals line"
    assert all(set(fields["by_code"]) == {"400"} for fields in told)
    # Every refusal is either logged or counted (the last count at shutdown), never both.
    assert len(refused) + sum(fields["unlogged"] for fields in told) == sent
    per_second = Counter(r["Timestamp"] // 10**9 for r in refused)
    assert max(per_second.values()) <= 2 * 20  # a budget second may straddle two clock seconds
    assert any(r["Fields"]["path"] == "/__heartbeat__" for r in records if r["Type"] == "request.summary")


def test_lifecycle_lines_are_logged_once_without_colour_escapes_even_with_a_metrics_port():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), metrics_port=free_port()) as node:
        assert http_get(node.url + "/__lbheartbeat__").status_code == 200
    logs = node.logs()
    assert "color_message" not in logs
    assert "\\u001b" not in logs
    messages = Counter(
        record["Fields"].get("msg")
        for record in map(json.loads, logs.splitlines())
        if record["Type"] == "uvicorn.error"
    )
    started = [msg for msg in messages if msg and msg.startswith("Started server process")]
    assert [messages[msg] for msg in started] == [1]
    assert messages["Application startup complete."] == 1
