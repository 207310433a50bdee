"""The built-in rules limit requests, not just hashes, per prefix: rotating addresses buys nothing."""

from __future__ import annotations

from scrypt_helper.abuse.rules import DEFAULT_RULES, parse_rules


async def test_default_rules_limit_the_requests_of_one_ipv6_allocation(make_app):
    app = await make_app(rules=None, trusted_proxies="1")  # None: the built-in rules
    limit = next(
        rule.attempts
        for rule in parse_rules(DEFAULT_RULES)
        if (rule.action, rule.property, rule.policy) == ("request", "ip_prefix", "ban")
    )
    # One host with a /56 sends each request from a fresh address in a fresh /64.
    addresses = [f"2001:db8:0:{n % 256:x}::{n // 256 + 1:x}" for n in range(limit + 1)]
    statuses = [
        (await app.get("/", headers={"X-Forwarded-For": address})).status_code for address in addresses
    ]
    assert statuses == [200] * limit + [429]
    assert (await app.get("/", headers={"X-Forwarded-For": "2001:db8:0:42::beef"})).status_code == 429
    assert (await app.get("/", headers={"X-Forwarded-For": "2001:db8:0:100::1"})).status_code == 200
