"""Closed-loop HTTP load: C concurrent clients posting hashes for a fixed time."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from scrypt_helper.bench.flood import Answer, prepared_request, read_answer
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import request_body


@dataclass
class LoadFigure:
    """What one closed-loop run at one concurrency measured."""

    concurrency: int
    seconds: float
    ok: int = 0
    rejected: int = 0
    late: int = 0
    failed: int = 0
    ok_latencies_ms: list[float] = field(default_factory=list, repr=False)
    rejected_latencies_ms: list[float] = field(default_factory=list, repr=False)

    def record(self, answer: Answer, elapsed_ms: float) -> None:
        """Count one answer: 200, 503 at once (queue full), 503 after the deadline, or a failure."""
        if answer.status == 200:
            self.ok += 1
            self.ok_latencies_ms.append(elapsed_ms)
        elif answer.status == 503 and b"in time" in answer.body:
            self.late += 1
        elif answer.status == 503:
            self.rejected += 1
            self.rejected_latencies_ms.append(elapsed_ms)
        else:
            self.failed += 1

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds

    def summary(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "ok": self.ok,
            "rejected_503": self.rejected,
            "late_503": self.late,
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

    Every client keeps one HTTP/1.1 connection; after a 503 it waits Retry-After, as a client
    must. ``headers``, if given, makes each request's extra headers (e.g. a new client address).
    """
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    figure = LoadFigure(concurrency=concurrency, seconds=seconds)

    async def user() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                body = json.dumps(random_body(params)).encode()
                began = time.perf_counter()
                writer.write(prepared_request(host, port, body, headers() if headers else {}))
                try:
                    answer = await read_answer(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    figure.failed += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                figure.record(answer, (time.perf_counter() - began) * 1000)
                if answer.headers.get("connection") == "close":
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                if answer.status == 503:
                    await asyncio.sleep(float(answer.headers.get("retry-after", 1)))
        finally:
            writer.close()

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
