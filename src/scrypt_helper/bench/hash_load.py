"""Clients asking for hashes in a closed loop, and what they got: throughput, latency, refusals."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import httpx

from scrypt_helper.bench.load import Reply, closed_loop, hash_requests, retry_after
from scrypt_helper.bench.load.requests import Clients
from scrypt_helper.engines import ScryptParams


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

    def record(self, reply: Reply | None, sent_at: float, replied_at: float) -> None:
        """Count one reply: 200, 503 at once (queue full), 503 after the deadline, or a failure."""
        elapsed_ms = (replied_at - sent_at) * 1000
        if reply is None:
            self.failed += 1
        elif reply.status == 200:
            self.ok += 1
            self.ok_latencies_ms.append(elapsed_ms)
        elif reply.status == 503 and b"in time" in reply.body:
            self.late += 1
        elif reply.status == 503:
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


async def hash_clients(
    url: str, params: ScryptParams, concurrency: int, seconds: float, *, clients: Clients = "one"
) -> LoadFigure:
    """Each of ``concurrency`` clients posts a fresh hash, waits for the answer, and posts again until
    time is up; after a 503 it waits Retry-After, as a client must. ``clients``: who each request
    seems to come from (``bench.load.requests``)."""
    target = httpx.URL(url)
    requests = hash_requests(target.host, target.port or 80, params, clients=clients)
    figure = LoadFigure(concurrency=concurrency, seconds=seconds)
    run = await closed_loop(
        requests, connections=concurrency, seconds=seconds, on_reply=figure.record, pause=retry_after
    )
    figure.seconds = run.seconds
    return figure


async def send_hashes(url: str, params: ScryptParams, count: int, concurrency: int) -> int:
    """Send ``count`` hash requests with ``concurrency`` in flight; return how many got 200."""
    target = httpx.URL(url)
    requests = hash_requests(target.host, target.port or 80, params)
    return (await closed_loop(requests, connections=concurrency, total=count, timeout=60)).count(200)
