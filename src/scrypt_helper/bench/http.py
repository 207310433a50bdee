"""Closed-loop HTTP load: C concurrent clients posting hashes for a fixed time."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from scrypt_helper.engines import ScryptParams
from scrypt_helper.protocol import request_body


@dataclass
class LoadFigure:
    """What one closed-loop run at one concurrency measured."""

    concurrency: int
    seconds: float
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    ok_latencies_ms: list[float] = field(default_factory=list, repr=False)
    rejected_latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds

    def summary(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "ok": self.ok,
            "rejected_503": self.rejected,
            "failed": self.failed,
            "ok_per_second": round(self.ok_per_second, 2),
            "p50_ms": round(percentile(self.ok_latencies_ms, 50), 1),
            "p99_ms": round(percentile(self.ok_latencies_ms, 99), 1),
            "reject_p50_ms": round(percentile(self.rejected_latencies_ms, 50), 1),
            "reject_p99_ms": round(percentile(self.rejected_latencies_ms, 99), 1),
        }


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank), or NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(pct) - 1))]


def random_body(params: ScryptParams) -> dict[str, object]:
    """A request for a fresh random 32-byte input."""
    return request_body(params, os.urandom(32))


async def closed_loop(
    url: str,
    params: ScryptParams,
    concurrency: int,
    seconds: float,
    headers: Callable[[], dict[str, str]] | None = None,
) -> LoadFigure:
    """Each of ``concurrency`` clients posts, waits for the answer, and posts again until time is up.

    ``headers``, if given, makes each request's extra headers (e.g. a new client address).
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        stop_at = time.perf_counter() + seconds
        started = time.perf_counter()
        figure = LoadFigure(concurrency=concurrency, seconds=seconds)

        async def user() -> None:
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                try:
                    extra = headers() if headers else None
                    response = await client.post("/", json=random_body(params), headers=extra)
                except httpx.HTTPError:
                    figure.failed += 1
                    continue
                elapsed_ms = (time.perf_counter() - began) * 1000
                if response.status_code == 200:
                    figure.ok += 1
                    figure.ok_latencies_ms.append(elapsed_ms)
                elif response.status_code == 503:
                    figure.rejected += 1
                    figure.rejected_latencies_ms.append(elapsed_ms)
                    await asyncio.sleep(0.05)  # back off a little, as a real client would
                else:
                    figure.failed += 1

        await asyncio.gather(*(user() for _ in range(concurrency)))
        figure.seconds = time.perf_counter() - started
        return figure


async def send_requests(url: str, params: ScryptParams, count: int, concurrency: int) -> int:
    """Send ``count`` requests with ``concurrency`` in flight; return how many got 200."""
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one() -> bool:
            async with semaphore:
                response = await client.post("/", json=random_body(params))
                return response.status_code == 200

        return sum(await asyncio.gather(*(one() for _ in range(count))))
