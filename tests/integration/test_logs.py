"""Logs are MozLog JSON with a request.summary per request, and never contain inputs or outputs."""

from __future__ import annotations

import hashlib
import json
import os

import httpx

from scrypt_helper.wire import request_body
from tests.conftest import SMALL, allowed_json, local_node


def test_no_input_or_output_in_logs_even_at_debug():
    inputs = [os.urandom(32) for _ in range(3)]
    bad_input = os.urandom(20).hex()
    with local_node(engine="hashlib", log_level="DEBUG", allowed_params=allowed_json(SMALL)) as node:
        outputs = [
            httpx.post(node.url + "/", json=request_body(SMALL, data)).json()["output"] for data in inputs
        ]
        httpx.post(node.url + "/", json={**request_body(SMALL, b"\x01"), "input": bad_input, "N": 7})
        httpx.post(node.url + "/", content=b'{"input": "' + bad_input.encode() + b'", "salt": ')
        httpx.get(node.url + "/__heartbeat__")
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
