"""Abuse prevention in-process: blocks, bans, reports, proxies, lists and API keys, on a real guard."""

from __future__ import annotations

import logging
import re

import httpx

from scrypt_helper_client import request_body
from tests.clock import control_abuse_time
from tests.conftest import SMALL

API_KEY = "0123456789abcdef0123"


async def scrypt(app, headers: dict[str, str] | None = None) -> httpx.Response:
    return await app.post("/", json=request_body(SMALL, b"\x01"), headers=headers or {})


async def statuses(app, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [(await scrypt(app, headers)).status_code for _ in range(count)]


async def metric(app, name: str) -> float:
    text = (await app.get("/metrics")).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def assert_limited(response: httpx.Response, errno: int = 114) -> None:
    assert response.status_code == {114: 429, 125: 403, 110: 401}[errno], response.text
    assert response.json()["errno"] == errno


async def test_block_refuses_without_hashing_then_recovers(make_app, engine, caplog, monkeypatch):
    clock = control_abuse_time(monkeypatch)
    app = await make_app(rules="scrypt : ip : 3 : 2s : 2s : block")
    assert await statuses(app, 3) == [200] * 3
    refused = await scrypt(app)
    assert_limited(refused)
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert await statuses(app, 20) == [429] * 20
    assert engine.hashed == 3
    assert (await app.get("/")).status_code == 200  # a block covers only its action
    clock.advance(2.2)
    assert (await scrypt(app)).status_code == 200
    decisions = 'scrypt_helper_abuse_decisions_total{policy="block",rule="scrypt:ip:3/2s:block"}'
    assert await metric(app, decisions) == 21
    assert [r.policy for r in caplog.records if r.name == "scrypt_helper.abuse"] == ["block"]


async def test_ban_refuses_every_request_but_not_health_checks(make_app, monkeypatch):
    clock = control_abuse_time(monkeypatch)
    app = await make_app(rules="request : ip : 3 : 2s : 2s : ban")
    assert (await app.post("/", content=b"garbage")).status_code == 400
    assert (await scrypt(app)).status_code == 200
    assert (await app.get("/")).status_code == 200
    assert_limited(await scrypt(app))
    assert_limited(await app.get("/"))
    assert (await app.get("/__lbheartbeat__")).status_code == 200
    assert (await app.get("/__heartbeat__")).status_code == 200
    clock.advance(2.2)
    assert (await scrypt(app)).status_code == 200


async def test_report_only_counts_and_logs_once(make_app, caplog):
    caplog.set_level(logging.WARNING, logger="scrypt_helper.abuse")
    app = await make_app(rules="scrypt : ip : 2 : 60s : 0 : report")
    assert await statuses(app, 5) == [200] * 5
    decisions = 'scrypt_helper_abuse_decisions_total{policy="report",rule="scrypt:ip:2/60s:report"}'
    assert await metric(app, decisions) == 3
    reports = [record for record in caplog.records if getattr(record, "policy", None) == "report"]
    assert [record.key for record in reports] == ["127.0.0.1"]


async def test_forwarded_for_from_an_untrusted_peer_changes_nothing(make_app):
    app = await make_app(rules="scrypt : ip : 2 : 60s : 60s : block")
    for spoofed in ("198.51.100.1", "198.51.100.2"):
        assert (await scrypt(app, {"X-Forwarded-For": spoofed})).status_code == 200
    assert_limited(await scrypt(app, {"X-Forwarded-For": "198.51.100.3"}))


async def test_forwarded_for_through_one_trusted_hop_counts_each_client(make_app):
    app = await make_app(rules="scrypt : ip : 2 : 60s : 60s : block", trusted_proxies="1")
    first = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
    assert await statuses(app, 2, first) == [200, 200]
    assert_limited(await scrypt(app, first))
    assert (await scrypt(app, {"X-Forwarded-For": "6.6.6.6, 198.51.100.2"})).status_code == 200


async def test_ip_prefix_rule_groups_a_slash_24(make_app):
    app = await make_app(rules="scrypt : ip_prefix : 2 : 60s : 60s : block", trusted_proxies="127.0.0.0/8")
    assert (await scrypt(app, {"X-Forwarded-For": "198.51.100.1"})).status_code == 200
    assert (await scrypt(app, {"X-Forwarded-For": "198.51.100.2"})).status_code == 200
    assert_limited(await scrypt(app, {"X-Forwarded-For": "198.51.100.3"}))
    assert (await scrypt(app, {"X-Forwarded-For": "198.51.101.1"})).status_code == 200


async def test_deny_and_allow_lists(make_app, engine):
    denied = await make_app(denylist="127.0.0.0/8")
    assert_limited(await scrypt(denied), errno=125)
    assert engine.hashed == 0
    allowed = await make_app(rules="scrypt : ip : 1 : 60s : 60s : block", allowlist="127.0.0.1/32")
    assert await statuses(allowed, 4) == [200] * 4


async def test_api_keys_have_their_own_limits(make_app):
    rules = "scrypt : ip : 1 : 60s : 60s : block; scrypt : api_key : 3 : 60s : 60s : block"
    app = await make_app(rules=rules, api_keys=f"partner:{API_KEY}")
    keyed = {"X-API-Key": API_KEY}
    assert await statuses(app, 3, keyed) == [200] * 3
    assert_limited(await scrypt(app, keyed))
    assert (await scrypt(app)).status_code == 200
    assert_limited(await scrypt(app))
    assert_limited(await scrypt(app, {"X-API-Key": "not-a-key-0123456789"}), errno=110)


WRONG_KEY = {"X-API-Key": "not-a-key-0123456789"}


async def test_unknown_keys_are_counted_then_every_key_from_the_address_is_refused(make_app, engine):
    app = await make_app(rules="bad_key : ip : 3 : 60s : 60s : block", api_keys=f"partner:{API_KEY}")
    for _ in range(3):
        assert_limited(await scrypt(app, WRONG_KEY), errno=110)
    refused = await scrypt(app, WRONG_KEY)
    assert_limited(refused)
    assert int(refused.headers["retry-after"]) == 60
    # A right guess is refused like a wrong one, so guessing teaches nothing more.
    assert_limited(await scrypt(app, {"X-API-Key": API_KEY}))
    assert_limited(await app.get("/", headers={"X-API-Key": API_KEY}))
    # The address's requests without a key (a NAT's other users) go on.
    assert (await scrypt(app)).status_code == 200
    assert engine.hashed == 1
    decisions = 'scrypt_helper_abuse_decisions_total{policy="block",rule="bad_key:ip:3/60s:block"}'
    assert await metric(app, decisions) == 3


async def test_unknown_keys_count_under_the_address_request_rules(make_app, engine):
    app = await make_app(rules="request : ip : 3 : 60s : 60s : ban", api_keys=f"partner:{API_KEY}")
    for _ in range(3):
        assert_limited(await scrypt(app, WRONG_KEY), errno=110)
    assert_limited(await scrypt(app, WRONG_KEY))
    assert_limited(await scrypt(app))
    assert_limited(await scrypt(app, {"X-API-Key": API_KEY}))
    assert engine.hashed == 0


async def test_an_address_ban_holds_whatever_key_is_presented(make_app, engine):
    rules = "scrypt : ip : 1 : 60s : 60s : ban; scrypt : api_key : 100 : 60s : 60s : block"
    app = await make_app(rules=rules, api_keys=f"partner:{API_KEY}")
    keyed = {"X-API-Key": API_KEY}
    assert (await scrypt(app)).status_code == 200
    assert_limited(await scrypt(app))
    assert_limited(await scrypt(app, keyed))
    assert_limited(await app.get("/", headers=keyed))
    assert engine.hashed == 1


async def test_a_prefix_ban_holds_for_key_holders_in_it_only(make_app):
    app = await make_app(
        rules="request : ip_prefix : 2 : 60s : 60s : ban",
        api_keys=f"partner:{API_KEY}",
        trusted_proxies="127.0.0.0/8",
    )
    for last in (1, 2):
        assert (await scrypt(app, {"X-Forwarded-For": f"198.51.100.{last}"})).status_code == 200
    assert_limited(await scrypt(app, {"X-Forwarded-For": "198.51.100.3"}))
    assert_limited(await scrypt(app, {"X-Forwarded-For": "198.51.100.4", "X-API-Key": API_KEY}))
    assert (await scrypt(app, {"X-Forwarded-For": "198.51.101.1", "X-API-Key": API_KEY})).status_code == 200


async def test_key_holders_requests_never_count_against_their_address(make_app):
    rules = "request : ip : 2 : 60s : 60s : ban; scrypt : ip : 2 : 60s : 60s : block"
    app = await make_app(rules=rules, api_keys=f"partner:{API_KEY}")
    assert await statuses(app, 10, {"X-API-Key": API_KEY}) == [200] * 10
    assert await statuses(app, 2) == [200, 200]


async def test_the_allow_list_never_makes_an_unknown_key_valid(make_app, engine):
    app = await make_app(
        rules="bad_key : ip : 1 : 60s : 60s : ban", allowlist="127.0.0.1/32", api_keys=f"partner:{API_KEY}"
    )
    for _ in range(3):
        assert_limited(await scrypt(app, WRONG_KEY), errno=110)
    assert (await scrypt(app, {"X-API-Key": API_KEY})).status_code == 200
    assert engine.hashed == 1
