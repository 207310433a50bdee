"""A real node behind a trusted proxy, flooded from more distinct addresses than it may track:
it keeps serving, its in-memory limit state stays at the cap, and a ban outlives the flood,
whether memory holds its only limits or is its fall-back while Redis is down."""

from __future__ import annotations

import re

import httpx
import pytest

from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.tls import shared_tls
from tests.conftest import SMALL, allowed_json, local_node

CAP = 50
FLOOD = 600
OFFENDER = {"X-Forwarded-For": "203.0.113.7"}


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def flood_address(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1"}


@pytest.mark.parametrize("redis", ["none", "down"])
def test_a_flood_of_fresh_addresses_stays_within_the_cap_and_keeps_the_ban(redis):
    flags: dict[str, object] = {}
    if redis == "down":  # configured, but nothing listens: the node limits from memory
        flags["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    with (
        local_node(
            engine="hashlib",
            allowed_params=allowed_json(SMALL),
            trusted_proxies="1",
            rules="request : ip : 3 : 60s : 600s : ban",
            max_tracked_keys=CAP,
            processes=1,  # one process's store: its cap is the node's
            **flags,
        ) as node,
        httpx.Client(base_url=node.url, timeout=10, verify=shared_tls()) as client,
    ):
        assert [client.get("/", headers=OFFENDER).status_code for _ in range(4)] == [200, 200, 200, 429]
        statuses = [client.get("/", headers=flood_address(n)).status_code for n in range(FLOOD)]
        assert statuses == [200] * FLOOD
        response = client.get("/", headers=OFFENDER)
        assert response.status_code == 429  # the ban outlived the flood
        assert response.json()["errno"] == 114
        text = client.get("/metrics").text
    assert metric(text, 'scrypt_helper_local_limit_keys{table="window"}') == CAP
    assert metric(text, 'scrypt_helper_local_limit_keys{table="marker"}') == 1
    assert metric(text, 'scrypt_helper_local_limit_evictions_total{table="window"}') == FLOOD + 1 - CAP
    assert metric(text, 'scrypt_helper_local_limit_keys{table="counter"}') == 0
    assert metric(text, 'scrypt_helper_local_limit_evictions_total{table="marker"}') == 0
    if redis == "down":
        assert metric(text, "scrypt_helper_redis_up") == 0
