"""Real nginx (deploy/nginx) in front of three real nodes sharing one real Redis, all on loopback.

Load clients send an API key whose rule is loose, so every hash still goes through the shared
limiter in Redis; the rate-limit test uses an address of its own (127.0.0.77: Linux routes all of
127/8 to loopback) that nginx reports to the nodes in X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.cluster import LoadResult, LocalCluster, find_nginx, metric_value, run_load
from scrypt_helper.bench.local_servers import LocalRedis
from scrypt_helper.bench.tls import http_get, http_post, shared_tls
from scrypt_helper.engines.vectors import PICL, PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json

pytestmark = [
    pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(
        LocalRedis().binary is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
    pytest.mark.timeout(60),
]

API_KEY = "load-test-key-0123456789"
LOAD_HEADERS = {"X-API-Key": API_KEY}
VICTIM = "127.0.0.77"  # a client address of its own, rate limited at 5 hashes a minute
RULES = "scrypt : ip : 5 : 60s : 60s : block; scrypt : api_key : 1000000 : 60s : 60s : block"
CONCURRENCY = 12
# Each load client's pause between its requests where a test needs steady traffic on every node, not
# a saturated cluster (whose CPU the other tests running beside it would lose).
THINK_SECONDS = 0.05
POST_200 = {"route": "/", "method": "POST", "status": "200"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        3,
        engine="libsodium",
        workers=1,
        queue_size=64,
        drain_seconds=1.0,
        allowed_params=allowed_json(PICL_PARAMS, SMALL),
        rules=RULES,
        api_keys=f"load:{API_KEY}",
    ) as running:
        yield running


@pytest.fixture
def healthy(cluster: LocalCluster) -> LocalCluster:
    """The cluster with every node and Redis up (a previous test may have killed one)."""
    cluster.ensure_healthy()
    return cluster


def small_body() -> dict[str, object]:
    return request_body(SMALL, os.urandom(32))


def load(cluster: LocalCluster, duration: float, think: float = THINK_SECONDS) -> asyncio.Task[LoadResult]:
    """Steady load through nginx for ``duration`` seconds (at most 20 000 requests); each client
    waits ``think`` seconds after each reply (0: as fast as the cluster answers)."""
    return asyncio.ensure_future(
        run_load(
            cluster.url + "/",
            small_body,
            concurrency=CONCURRENCY,
            duration=duration,
            max_requests=20_000,
            headers=LOAD_HEADERS,
            timeout=20,
            think=think,
        )
    )


def posts_served(cluster: LocalCluster) -> list[float]:
    return [metric_value(cluster.metrics(i), "scrypt_helper_requests_total", **POST_200) for i in range(3)]


def describe(result: LoadResult) -> str:
    return f"{len(result.failures)} of {len(result.outcomes)} failed, e.g. {result.failures[:3]}"


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.05)


def test_known_answers_through_nginx_and_a_clean_access_log(healthy: LocalCluster):
    with httpx.Client(base_url=healthy.url, headers=LOAD_HEADERS, timeout=30, verify=shared_tls()) as client:
        for answer in PICL:
            response = client.post("/", json=request_body(answer.params, answer.password))
            assert response.status_code == 200, response.text
            assert response.json() == {"output": answer.output.hex()}
            assert response.headers["cache-control"] == "no-store"
        small = client.post("/", json=request_body(SMALL, b"\x01" * 32))
        assert small.status_code == 200
        assert len(bytes.fromhex(small.json()["output"])) == SMALL.buflen
        assert client.get("/").text == "OK"
        assert client.get("/__lbheartbeat__").status_code == 200
        # Private routes stay private through the proxy.
        assert client.get("/metrics").status_code == 404
        assert client.get("/__heartbeat__").status_code == 404
        too_big = client.post("/", content=b"{" + b" " * 9000 + b"}")
        assert too_big.status_code == 413
        assert too_big.json()["errno"] == 113
    log = healthy.nginx.access_log()  # type: ignore[union-attr]
    entries = [json.loads(line) for line in log.splitlines()]
    assert {"remote_addr", "status", "upstream_addr", "request_time", "request_id"} <= set(entries[-1])
    for answer in PICL:
        assert answer.password.hex() not in log
        assert answer.output.hex() not in log
    assert small.json()["output"] not in log
    assert API_KEY not in log


def test_requests_spread_over_every_node(healthy: LocalCluster):
    before = posts_served(healthy)
    result = asyncio.run(
        run_load(
            healthy.url + "/",
            small_body,
            concurrency=6,
            duration=10,
            max_requests=90,
            headers=LOAD_HEADERS,
        )
    )
    assert not result.failures, describe(result)
    assert len(result.outcomes) == 90
    served = [after - b for after, b in zip(posts_served(healthy), before, strict=True)]
    assert sum(served) == 90
    assert all(count >= 10 for count in served), f"uneven spread: {served}"


def test_a_rate_limit_hit_through_one_node_holds_on_every_node(healthy: LocalCluster):
    through_nginx = httpx.Client(
        base_url=healthy.url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=VICTIM, verify=shared_tls()),
    )
    with through_nginx:
        statuses = [through_nginx.post("/", json=small_body()).status_code for _ in range(5)]
        assert statuses == [200] * 5
        blocked = through_nginx.post("/", json=small_body())
        assert blocked.status_code == 429
        # The node's refusal (nginx's own says Retry-After: 1), counted by a node's abuse rule.
        assert blocked.json()["errno"] == 114
        assert int(blocked.headers["retry-after"]) > 1
        # A forged X-Forwarded-For changes nothing: nginx appends the real address, the node
        # (--trusted-proxies 1) believes only that last entry.
        forged = through_nginx.post("/", json=small_body(), headers={"X-Forwarded-For": "192.0.2.1"})
        assert forged.status_code == 429
    decisions = [metric_value(healthy.metrics(i), "scrypt_helper_abuse_decisions_total") for i in range(3)]
    assert sum(decisions) >= 2
    # Every node, asked directly with the header nginx would add, enforces the block set in Redis,
    # and only for that client.
    for node in healthy.nodes:
        direct = http_post(node.url + "/", json=small_body(), headers={"X-Forwarded-For": VICTIM})
        assert direct.status_code == 429, node.url
        other = http_post(node.url + "/", json=small_body(), headers={"X-Forwarded-For": "127.0.0.78"})
        assert other.status_code == 200, node.url
    assert "limiting requests" not in healthy.nginx.error_log()  # type: ignore[union-attr]


async def test_nodes_that_shed_load_stay_in_nginx_and_its_heartbeat_answers(healthy: LocalCluster):
    """A node's 503 is load shed on purpose, and nginx retries it on the next node; it must not take
    the node out, or an overload takes every node out and nginx answers 503 to everything."""
    async with httpx.AsyncClient(
        base_url=healthy.url, headers=LOAD_HEADERS, timeout=30, verify=shared_tls()
    ) as client:
        burst = [client.post("/", json=request_body(PICL_PARAMS, os.urandom(32))) for _ in range(48)]
        statuses = [answer.status_code for answer in await asyncio.gather(*burst)]
        beats = [(await client.get("/__lbheartbeat__")).status_code for _ in range(5)]
        after = await client.post("/", json=small_body())
    assert 503 in statuses, statuses  # the nodes shed what they could not start in time
    assert set(statuses) <= {200, 503}
    assert beats == [200] * 5
    assert after.status_code == 200
    assert "no live upstreams" not in healthy.nginx.error_log()  # type: ignore[union-attr]


async def test_sigkill_of_a_node_under_load_fails_no_request(healthy: LocalCluster):
    running = load(healthy, duration=6.0, think=0)  # at capacity: the survivors must carry it
    await asyncio.sleep(2.0)
    killed_at = time.monotonic()
    healthy.nodes[1].signal(signal.SIGKILL)
    result = await running
    assert healthy.nodes[1].process.poll() == -signal.SIGKILL  # type: ignore[union-attr]
    assert not result.failures, describe(result)
    before = result.throughput(result.began + 0.5, killed_at)
    after = result.throughput(result.ended - 2.0, result.ended)
    assert before > 0
    # Two nodes of three carry two thirds of it on an idle machine; beside the other tests' load (the
    # nodes' share of the cores shrinks with their number) at least half of that.
    assert after >= before / 3, f"throughput {before:.0f}/s before the kill, {after:.0f}/s after"
    # No second without answers after the kill.
    for start in range(int(result.ended - killed_at)):
        assert result.in_window(killed_at + start, killed_at + start + 1), f"stalled {start} s after"


async def test_sigterm_drains_a_node_under_load_without_failures(healthy: LocalCluster):
    node = healthy.nodes[2]
    running = load(healthy, duration=5.0)
    await asyncio.sleep(1.5)
    served_before = metric_value(healthy.metrics(2), "scrypt_helper_requests_total", **POST_200)
    assert served_before > 0
    node.signal(signal.SIGTERM)
    signalled = time.monotonic()

    def lbheartbeat_down() -> bool:
        return http_get(node.url + "/__lbheartbeat__", timeout=2).status_code == 503

    await wait_until(lbheartbeat_down, 1.0, "__lbheartbeat__ 503")
    assert await asyncio.to_thread(node.wait, 30) == 0
    drained_in = time.monotonic() - signalled
    result = await running
    assert not result.failures, describe(result)
    assert 1.0 <= drained_in < 4.0
    assert "draining for 1.0 s" in node.logs()
    assert result.throughput(result.ended - 1.0, result.ended) > 0


async def test_redis_outage_under_load_fails_no_request(healthy: LocalCluster):
    redis = healthy.redis
    assert redis is not None
    running = load(healthy, duration=5.0)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(redis.stop)

    def all_nodes_report(up: int) -> bool:
        return all(metric_value(healthy.metrics(i), "scrypt_helper_redis_up") == up for i in range(3))

    await wait_until(lambda: all_nodes_report(0), 3.0, "redis_up 0 on every node")
    await asyncio.sleep(0.5)
    await asyncio.to_thread(redis.start)
    result = await running
    assert not result.failures, describe(result)
    await wait_until(lambda: all_nodes_report(1), 5.0, "redis_up 1 on every node")
    failovers = [metric_value(healthy.metrics(i), "scrypt_helper_redis_failovers_total") for i in range(3)]
    assert all(count >= 1 for count in failovers)
