"""Admission control over real HTTP: fast 503s under overload, deadlines, clients that leave."""

from __future__ import annotations

import asyncio
import os
import re
import time

import httpx
import pytest

from scrypt_helper.bench.tls import http_get, shared_tls
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import allowed_json, local_node

# The production set (a hash takes a noticeable time), one worker: easy to overload.
PICL_ONLY = allowed_json(PICL_PARAMS)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def timed_post(client: httpx.AsyncClient, **kwargs: object) -> tuple[int, float, httpx.Response]:
    began = time.perf_counter()
    response = await client.post("/", json=request_body(PICL_PARAMS, os.urandom(32)), **kwargs)
    return response.status_code, time.perf_counter() - began, response


@pytest.fixture(scope="module")
def tight_server():
    with local_node(
        engine="libsodium", workers=1, queue_size=2, max_queue_wait=30, allowed_params=PICL_ONLY
    ) as node:
        yield node


async def test_overload_gets_fast_503s_while_heartbeats_stay_fast(tight_server):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=60, verify=shared_tls()) as client:
        flood = [asyncio.ensure_future(timed_post(client)) for _ in range(30)]
        await asyncio.sleep(0.05)
        heartbeat_times = []
        for _ in range(5):
            began = time.perf_counter()
            assert (await client.get("/__lbheartbeat__")).status_code == 200
            heartbeat_times.append(time.perf_counter() - began)
        results = await asyncio.gather(*flood)
    ok = [r for r in results if r[0] == 200]
    rejected = [r for r in results if r[0] == 503]
    assert len(ok) + len(rejected) == len(results)
    assert len(ok) >= 3  # one running and two queued at least
    assert len(rejected) >= 10
    for _, seconds, response in rejected:
        assert seconds < 1.0
        assert response.json()["errno"] == 201
        assert int(response.headers["retry-after"]) >= 1
    assert max(heartbeat_times) < 0.5
    metrics = http_get(tight_server.url + "/metrics").text
    assert metric(metrics, 'scrypt_helper_rejections_total{reason="queue_full"}') >= len(rejected)
    summaries = [line for line in tight_server.logs().splitlines() if '"reason": "queue_full"' in line]
    assert len(summaries) >= len(rejected)


async def test_a_request_that_cannot_start_within_the_deadline_gets_503_on_arrival():
    with local_node(
        engine="libsodium", workers=1, queue_size=20, max_queue_wait=0.25, allowed_params=PICL_ONLY
    ) as node:
        async with httpx.AsyncClient(base_url=node.url, timeout=60, verify=shared_tls()) as client:
            results = await asyncio.gather(*(timed_post(client) for _ in range(12)))
        late = [r for r in results if r[0] == 503]
        assert late, "12 hashes on one worker cannot all start within 0.25 s"
        assert any(r[0] == 200 for r in results)
        at_the_door = [r for r in late if "within the maximum queue wait" in r[2].json()["message"]]
        at_the_deadline = [r for r in late if "in time" in r[2].json()["message"]]
        assert at_the_door, "the queue's room (20) is not the bound: the workers' measured speed is"
        assert len(at_the_door) + len(at_the_deadline) == len(late)
        for _, seconds, _ in late:
            assert seconds < 2.0
        metrics = http_get(node.url + "/metrics").text
        assert metric(metrics, 'scrypt_helper_rejections_total{reason="queue_full"}') == len(at_the_door)
        deadline = 'scrypt_helper_rejections_total{reason="deadline"}'
        assert (metric(metrics, deadline) if deadline in metrics else 0) == len(at_the_deadline)
        assert metric(metrics, "scrypt_helper_batch_size_count") == 12 - len(late)


async def test_queued_requests_of_clients_that_left_are_never_computed():
    with local_node(
        engine="libsodium", workers=1, queue_size=20, max_queue_wait=30, allowed_params=PICL_ONLY
    ) as node:
        async with httpx.AsyncClient(base_url=node.url, timeout=60, verify=shared_tls()) as client:
            busy = [asyncio.ensure_future(timed_post(client)) for _ in range(4)]
            await asyncio.sleep(0.05)
            async with httpx.AsyncClient(base_url=node.url, timeout=0.1, verify=shared_tls()) as impatient:
                gone = await asyncio.gather(
                    *(timed_post(impatient) for _ in range(5)), return_exceptions=True
                )
            assert all(isinstance(g, httpx.TimeoutException) for g in gone)
            assert all(r[0] == 200 for r in await asyncio.gather(*busy))
        deadline = time.monotonic() + 10
        while True:
            metrics = http_get(node.url + "/metrics").text
            if (
                metric(metrics, "scrypt_helper_queue_depth") == 0
                and metric(metrics, "scrypt_helper_in_flight") == 0
            ):
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert metric(metrics, 'scrypt_helper_rejections_total{reason="client_gone"}') == 5
        assert metric(metrics, "scrypt_helper_batch_size_count") == 4
