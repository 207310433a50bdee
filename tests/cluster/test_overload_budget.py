"""Every node overloaded behind real nginx: a client that follows Retry-After is never given 429.

nginx retries a node's 503 on the next node, and clients retry after ``Retry-After``; only hashes
computed, or refused by a rule, count against a client's ``scrypt`` budget, so an overload never
turns into rate limiting. A flood straight at the nodes (127.0.0.1, an API key of its own) keeps
every worker and queue slot busy for a few seconds; meanwhile well-behaved clients ask through
nginx, each from an address in a /24 of its own (Linux routes all of 127/8 to loopback), so that
nginx (per-address limits) and the nodes (per-address and per-/24 rules, through the
X-Forwarded-For nginx adds) see different clients.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest

from harness.cluster import LocalCluster, find_nginx, metric_value, run_load
from scrypt_helper.bench.local_servers import LocalRedis
from scrypt_helper.bench.tls import shared_tls
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json

pytestmark = [
    pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(
        LocalRedis().binary is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
    pytest.mark.timeout(90),
]

FLOOD_KEY = "flood-key-0123456789"
# The flood's hashes hold a worker some tens of milliseconds (16 MiB each), so that a slot frees
# for a moment only between one flood hash and the next.
FLOOD_PARAMS = ScryptParams(salt=SMALL.salt, n=16384, r=8, p=1, buflen=32)
FLOOD_SECONDS = 4.0
BUDGET = 3  # hashes a minute per address and per /24: a login's worth, no room for retries
RULES = (
    f"scrypt : ip : {BUDGET} : 60s : 60s : block; scrypt : ip_prefix : {BUDGET} : 60s : 60s : block;"
    " scrypt : api_key : 1000000 : 60s : 60s : block"
)
CLIENTS = [f"127.0.{subnet}.1" for subnet in range(1, 5)]
TRIES = 20  # per hash, each after the Retry-After of the last 503


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # Per node, one worker and one queue slot: the flood below fills both.
    with LocalCluster(
        3,
        engine="hashlib",
        workers=1,
        queue_size=1,
        max_queue_wait=0.5,
        allowed_params=allowed_json(SMALL, FLOOD_PARAMS),
        rules=RULES,
        api_keys=f"flood:{FLOOD_KEY}",
    ) as running:
        yield running


async def well_behaved(url: str, address: str) -> list[tuple[int, str]]:
    """``BUDGET`` hashes from ``address``, each retried after ``Retry-After`` while the answer is 503.

    Returns every answer's status and message, in order.
    """
    seen: list[tuple[int, str]] = []
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=shared_tls())
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=20) as client:
        for _ in range(BUDGET):
            for _ in range(TRIES):
                response = await client.post("/", json=request_body(SMALL, os.urandom(32)))
                seen.append((response.status_code, response.json().get("message", "")))
                if response.status_code != 503:
                    break
                await asyncio.sleep(float(response.headers["retry-after"]))
    return seen


def refused_by_nodes(cluster: LocalCluster) -> float:
    """Hashes the nodes refused with 503 (queue full, deadline, draining) so far."""
    return sum(metric_value(cluster.metrics(i), "scrypt_helper_rejections_total") for i in range(3))


async def test_a_client_that_follows_retry_after_is_never_rate_limited_by_an_overload(cluster: LocalCluster):
    refused_before = refused_by_nodes(cluster)
    floods = [
        asyncio.ensure_future(
            run_load(
                node.url + "/",
                lambda: request_body(FLOOD_PARAMS, os.urandom(32)),
                concurrency=2,  # one hash running, one waiting, on every node
                duration=FLOOD_SECONDS,
                max_requests=10_000,
                headers={"X-API-Key": FLOOD_KEY},
            )
        )
        for node in cluster.nodes
    ]
    try:
        await asyncio.sleep(0.5)
        answers = await asyncio.gather(*(well_behaved(cluster.url, address) for address in CLIENTS))
    finally:
        flooded = await asyncio.gather(*floods)
    for address, seen in zip(CLIENTS, answers, strict=True):
        statuses = [status for status, _ in seen]
        assert 429 not in statuses, f"{address}: {seen}"
        assert statuses.count(200) == BUDGET, f"{address}: {seen}"
        assert set(statuses) <= {200, 503}, f"{address}: {seen}"
    # The overload reached the nodes: they refused the clients' hashes themselves, at least once a
    # client on average (nginx tries up to three nodes per request, then, with every node failed,
    # answers alone for a few seconds). Each such refusal used to count against the client.
    flood_refused = sum(outcome.status == 503 for result in flooded for outcome in result.outcomes)
    assert all(result.throughput() > 0 for result in flooded)
    assert refused_by_nodes(cluster) - refused_before - flood_refused >= len(CLIENTS), answers
