"""The drain check that a node and the container image both pass: SIGTERM while hashes are in
flight turns ``__lbheartbeat__`` 503 at once, answers every hash, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Protocol

import httpx

from scrypt_helper.bench.tls import shared_tls
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body

HASHES = 6  # on one single-lane worker, so they queue behind each other


class Drainable(Protocol):
    """A running node, as a child process or as a container."""

    @property
    def url(self) -> str: ...

    def signal(self, sig: int) -> None: ...

    def wait(self, timeout: float) -> int: ...

    def logs(self) -> str: ...


async def assert_sigterm_drains(server: Drainable, heartbeat_url: str, drain_seconds: float = 1.0) -> None:
    """Send SIGTERM once a production hash is in flight, then hold the server to the drain."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60, verify=shared_tls()) as client:
        jobs = [
            asyncio.ensure_future(client.post("/", json=request_body(PICL_PARAMS, os.urandom(32))))
            for _ in range(HASHES)
        ]
        while (await client.get(heartbeat_url)).json()["details"]["node"]["in_flight"] == 0:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.signal, signal.SIGTERM)
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=5, verify=shared_tls()) as prober:
            while (probe := await prober.get("/__lbheartbeat__")).status_code == 200:
                assert time.monotonic() - began < 1.0, "lbheartbeat never turned 503"
                await asyncio.sleep(0.02)
        assert probe.status_code == 503
        responses = await asyncio.gather(*jobs)
    assert [r.status_code for r in responses] == [200] * HASHES
    assert await asyncio.to_thread(server.wait, 60) == 0
    assert f"draining for {drain_seconds:.1f} s" in server.logs()
