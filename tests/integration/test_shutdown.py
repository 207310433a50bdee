"""SIGTERM drains: __lbheartbeat__ turns 503, every request in flight is answered, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.wire import request_body
from tests.conftest import allowed_json, local_node


async def test_sigterm_answers_every_request_in_flight_then_exits_cleanly():
    node = local_node(
        engine="libsodium",
        workers=1,
        queue_size=16,
        max_queue_wait=30,
        drain_seconds=1.0,
        allowed_params=allowed_json(PICL_PARAMS),
    ).start()
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=60) as client:
            jobs = [
                asyncio.ensure_future(client.post("/", json=request_body(PICL_PARAMS, os.urandom(32))))
                for _ in range(6)
            ]
            while (await client.get("/__heartbeat__")).json()["details"]["node"]["in_flight"] == 0:
                await asyncio.sleep(0.01)
            node.signal(signal.SIGTERM)
            began = time.monotonic()
            async with httpx.AsyncClient(base_url=node.url, timeout=5) as prober:
                while (probe := await prober.get("/__lbheartbeat__")).status_code == 200:
                    assert time.monotonic() - began < 1.0, "lbheartbeat never turned 503"
                    await asyncio.sleep(0.02)
            assert probe.status_code == 503
            responses = await asyncio.gather(*jobs)
        assert [r.status_code for r in responses] == [200] * 6
        assert await asyncio.to_thread(node.wait, 30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(node.url + "/__lbheartbeat__")
        assert "draining for 1.0 s" in node.logs()
    finally:
        node.stop()
