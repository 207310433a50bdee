"""Abuse prevention over real HTTP: blocks, bans, reports, proxies, lists and API keys."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from scrypt_helper.protocol import request_body
from tests.conftest import SMALL, allowed_json, local_node

API_KEY = "0123456789abcdef0123"


def node(**flags: object):
    return local_node(engine="hashlib", allowed_params=allowed_json(SMALL), **flags)


def scrypt(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url + "/", json=request_body(SMALL, b"\x01"), headers=headers or {})


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def assert_limited(response: httpx.Response, errno: int = 114) -> None:
    assert response.status_code == {114: 429, 125: 403, 110: 401}[errno], response.text
    assert response.json()["errno"] == errno


def test_block_refuses_without_hashing_then_recovers():
    with node(rules="scrypt : ip : 3 : 2s : 2s : block") as server:
        assert [scrypt(server.url).status_code for _ in range(3)] == [200] * 3
        refused = scrypt(server.url)
        assert_limited(refused)
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        began = time.perf_counter()
        for _ in range(20):
            assert scrypt(server.url).status_code == 429
        assert (time.perf_counter() - began) / 20 < 0.05
        assert metric(server.url, "scrypt_helper_batch_size_count") == 3
        assert httpx.get(server.url + "/").status_code == 200  # a block covers only its action
        time.sleep(2.2)
        assert scrypt(server.url).status_code == 200
        assert (
            metric(
                server.url, 'scrypt_helper_abuse_decisions_total{policy="block",rule="scrypt:ip:3/2s:block"}'
            )
            == 21
        )
    assert '"policy": "block"' in server.logs()


def test_ban_refuses_every_request_but_not_health_checks():
    with node(rules="request : ip : 3 : 2s : 2s : ban") as server:
        assert httpx.post(server.url + "/", content=b"garbage").status_code == 400
        assert scrypt(server.url).status_code == 200
        assert httpx.get(server.url + "/").status_code == 200
        assert_limited(scrypt(server.url))
        assert_limited(httpx.get(server.url + "/"))
        assert httpx.get(server.url + "/__lbheartbeat__").status_code == 200
        assert httpx.get(server.url + "/__heartbeat__").status_code == 200
        time.sleep(2.2)
        assert scrypt(server.url).status_code == 200


def test_report_only_counts_and_logs_once():
    with node(rules="scrypt : ip : 2 : 60s : 0 : report") as server:
        assert [scrypt(server.url).status_code for _ in range(5)] == [200] * 5
        assert (
            metric(
                server.url,
                'scrypt_helper_abuse_decisions_total{policy="report",rule="scrypt:ip:2/60s:report"}',
            )
            == 3
        )
    reports = [line for line in server.logs().splitlines() if '"policy": "report"' in line]
    assert len(reports) == 1
    assert json.loads(reports[0])["Fields"]["key"] == "127.0.0.1"


def test_forwarded_for_from_an_untrusted_peer_changes_nothing():
    with node(rules="scrypt : ip : 2 : 60s : 60s : block") as server:
        for spoofed in ("198.51.100.1", "198.51.100.2"):
            assert scrypt(server.url, {"X-Forwarded-For": spoofed}).status_code == 200
        assert_limited(scrypt(server.url, {"X-Forwarded-For": "198.51.100.3"}))


def test_forwarded_for_through_one_trusted_hop_counts_each_client():
    with node(rules="scrypt : ip : 2 : 60s : 60s : block", trusted_proxies="1") as server:
        first = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
        assert [scrypt(server.url, first).status_code for _ in range(2)] == [200, 200]
        assert_limited(scrypt(server.url, first))
        assert scrypt(server.url, {"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}).status_code == 200


def test_ip_prefix_rule_groups_a_slash_24():
    with node(rules="scrypt : ip_prefix : 2 : 60s : 60s : block", trusted_proxies="127.0.0.0/8") as server:
        assert scrypt(server.url, {"X-Forwarded-For": "198.51.100.1"}).status_code == 200
        assert scrypt(server.url, {"X-Forwarded-For": "198.51.100.2"}).status_code == 200
        assert_limited(scrypt(server.url, {"X-Forwarded-For": "198.51.100.3"}))
        assert scrypt(server.url, {"X-Forwarded-For": "198.51.101.1"}).status_code == 200


def test_deny_and_allow_lists():
    with node(denylist="127.0.0.0/8") as server:
        assert_limited(scrypt(server.url), errno=125)
    with node(rules="scrypt : ip : 1 : 60s : 60s : block", allowlist="127.0.0.1/32") as server:
        assert [scrypt(server.url).status_code for _ in range(4)] == [200] * 4


def test_api_keys_have_their_own_limits():
    rules = "scrypt : ip : 1 : 60s : 60s : block; scrypt : api_key : 3 : 60s : 60s : block"
    with node(rules=rules, api_keys=f"partner:{API_KEY}") as server:
        keyed = {"X-API-Key": API_KEY}
        assert [scrypt(server.url, keyed).status_code for _ in range(3)] == [200] * 3
        assert_limited(scrypt(server.url, keyed))
        assert scrypt(server.url).status_code == 200
        assert_limited(scrypt(server.url))
        assert_limited(scrypt(server.url, {"X-API-Key": "not-a-key-0123456789"}), errno=110)


def test_a_bad_rule_stops_start_up_naming_the_line():
    with pytest.raises(RuntimeError) as caught:
        node(rules="scrypt : ip : 1 : 1s : 1s : block\nscrypt : ip : 1 : 1s : 1s : stall").start()
    assert "rule 2" in str(caught.value)
    assert "unknown policy 'stall'" in str(caught.value)
