"""Region failover rehearsed on one machine: two regions behind a health-checking global router.

Each region is nginx (deploy/nginx) in front of two nodes sharing the region's own Redis
(``harness/regions.py``); HAProxy (``harness/haproxy.py``) stands in for Route 53 or Global
Accelerator, one frontend per region. Three groups of callers use the client library with local
fallback off, each paced to ``rate`` calls a second:

- ``failover``: both frontends, their own region's first (half are nearest region a, half region b);
- ``router``: region a's frontend only, so only the router's health checks move them;
- ``direct``: region a's own proxy only (its load balancer, no global layer, no second URL).

Under that load region a is killed whole (``Region.kill``: every node, nginx and Redis at once with
SIGKILL), left dead for ``outage`` seconds, brought back on the same ports, and watched for ``after``
seconds. HAProxy's statistics are sampled every ``SAMPLE_SECONDS``, and the client's log of each failed
attempt is recorded with the caller's group. Used by ``tests/cluster/test_regions.py`` (a few seconds
of load) and ``scripts/region_failover.py`` (the full rehearsal, with figures).
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field

from harness.haproxy import HealthCheck, LocalHAProxy, ServerStats
from harness.regions import Region, start_regions
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import DEFAULT_COOLDOWN, AsyncClient, ClientError

SAMPLE_SECONDS = 0.02
GROUPS = ("failover", "router", "direct")
_GROUP: contextvars.ContextVar[str] = contextvars.ContextVar("rehearsal_group", default="")


@dataclass(frozen=True, slots=True)
class Plan:
    """The rehearsal's parameters: load, timeline (seconds), the router's checks, the clients' cool-down."""

    params: ScryptParams
    callers: int = 8  # failover callers, half nearest each region; 1 router and 1 direct caller besides
    rate: float = 10.0
    steady: float = 10.0
    outage: float = 20.0
    after: float = 40.0
    check: HealthCheck = field(default_factory=HealthCheck)
    cooldown: float = DEFAULT_COOLDOWN
    max_attempts: int = 5
    deadline: float = 30.0


@dataclass
class Group:
    """One group's calls: how many, the failed ones, and when each failed attempt happened."""

    calls: int = 0
    failed: int = 0
    failed_attempts: list[float] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds)


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    servers: tuple[ServerStats, ...]

    def region_down(self, region: str) -> bool:
        """Whether the router sends no traffic to ``region`` from any frontend."""
        return not any(s.up for s in self.servers if s.server == region)

    def answered(self, region: str) -> int:
        """2xx answers ``region`` gave through the router so far, all frontends together."""
        return sum(s.answered_2xx for s in self.servers if s.server == region)


@dataclass
class Report:
    """What a rehearsal measured; times are ``time.monotonic()`` values."""

    plan: Plan
    groups: dict[str, Group]
    samples: list[Sample]
    began: float
    killed: float
    restarting: float
    back: float
    ended: float

    def router_failover(self) -> float | None:
        """Kill -> the first sample where the router sends region a nothing from any frontend."""
        down = next((s.at for s in self.samples if s.at >= self.killed and s.region_down("a")), None)
        return None if down is None else down - self.killed

    def callers_failover(self) -> float:
        """Kill -> the failover callers' last failed attempt before the restart (0 if none failed)."""
        failed = [t for t in self.groups["failover"].failed_attempts if self.killed <= t < self.restarting]
        return max(failed, default=self.killed) - self.killed

    def failover(self) -> float | None:
        """Kill -> every request of the callers that can fail over answered by region b: the later of
        the router's failover and the failover callers' last failed attempt.
        """
        router = self.router_failover()
        return None if router is None else max(router, self.callers_failover())

    def router_back(self) -> float | None:
        """Region a up again (nginx answering) -> the first sample where the router sends it traffic."""
        up = next((s.at for s in self.samples if s.at >= self.back and not s.region_down("a")), None)
        return None if up is None else up - self.back

    def traffic_back(self) -> float | None:
        """Region a up again -> the first sample with a new 2xx answer from region a through the router."""
        before = self._at(self.back).answered("a")
        first = next((s.at for s in self.samples if s.at >= self.back and s.answered("a") > before), None)
        return None if first is None else first - self.back

    def traffic_restored(self, window: float = 1.0, level: float = 0.9) -> float | None:
        """Region a up again -> the end of the first ``window`` seconds in which region a's share of the
        answers through the router is back to ``level`` of its share before the kill.
        """
        before = self.share("a", self.began, self.killed)
        restored = next(
            (
                s.at
                for s in self.samples
                if s.at >= self.back + window and self.share("a", s.at - window, s.at) >= level * before
            ),
            None,
        )
        return None if restored is None else restored - self.back

    def share(self, region: str, start: float, end: float) -> float:
        """``region``'s share of the 2xx answers through the router within [start, end]."""
        first, last = self._at(start), self._at(end)
        mine = last.answered(region) - first.answered(region)
        total = sum(last.answered(r) - first.answered(r) for r in ("a", "b"))
        return mine / total if total else 0.0

    def max_latency(self, group: str, start: float, end: float) -> float:
        """The slowest call of ``group`` that started within [start, end)."""
        return max((s for t, s in self.groups[group].latencies if start <= t < end), default=0.0)

    def _at(self, when: float) -> Sample:
        """The last sample taken at or before ``when`` (the first one if none); samples are in time order."""
        index = bisect.bisect_right(self.samples, when, key=lambda s: s.at)
        return self.samples[max(0, index - 1)]


class _AttemptLog(logging.Handler):
    """Records when each failed attempt of the client library happened, by the caller's group."""

    def __init__(self, groups: dict[str, Group]) -> None:
        super().__init__(logging.INFO)
        self.groups = groups

    def emit(self, record: logging.LogRecord) -> None:
        group = self.groups.get(_GROUP.get())
        if group is not None and str(record.msg).startswith("scrypt helper attempt"):
            group.failed_attempts.append(time.monotonic())


@contextmanager
def _attempts_logged(groups: dict[str, Group]) -> Iterator[None]:
    logger = logging.getLogger("scrypt_helper_client")
    handler, level = _AttemptLog(groups), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def region_flags(params: ScryptParams) -> dict[str, object]:
    """Small nodes: one worker and one process each (two regions of two share this machine), every hash
    counted in the region's Redis under a loose per-address rule.
    """
    return {
        "engine": "libsodium",
        "workers": 1,
        "processes": 1,
        "queue_size": 64,
        "drain_seconds": 0,
        "allowed_params": allowed_params_json(params),
        "rules": "scrypt : ip : 1000000 : 60s : 60s : block",
    }


async def _caller(
    client: AsyncClient, group: str, report: dict[str, Group], plan: Plan, stop: asyncio.Event
) -> None:
    _GROUP.set(group)  # this task's own context: the attempt log files its failures under the group
    inputs = [os.urandom(32) for _ in range(8)]
    p = plan.params
    answers = {
        data: hashlib.scrypt(data, salt=p.salt, n=p.n, r=p.r, p=p.p, dklen=p.buflen, maxmem=1 << 28)
        for data in inputs
    }
    record = report[group]
    next_call = time.monotonic()
    while not stop.is_set():
        data = inputs[record.calls % len(inputs)]
        started = time.monotonic()
        try:
            ok = await client.hash(data) == answers[data]
        except ClientError:
            ok = False
        record.calls += 1
        record.failed += not ok
        record.latencies.append((started, time.monotonic() - started))
        next_call = max(next_call + 1 / plan.rate, time.monotonic())
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_call - time.monotonic())


async def _sample(router: LocalHAProxy, samples: list[Sample], stop: asyncio.Event) -> None:
    while not stop.is_set():
        servers = await asyncio.to_thread(router.stats)
        samples.append(Sample(time.monotonic(), tuple(servers)))
        await asyncio.sleep(SAMPLE_SECONDS)


async def _run(plan: Plan, a: Region, b: Region, router: LocalHAProxy) -> Report:
    options = {
        "params": plan.params,
        "fallback": False,
        "deadline": plan.deadline,
        "max_attempts": plan.max_attempts,
    }
    front_a, front_b = router.url("a"), router.url("b")
    clients: list[tuple[str, AsyncClient]] = [
        (
            "failover",
            AsyncClient(
                [front_a, front_b] if i % 2 == 0 else [front_b, front_a], cooldown=plan.cooldown, **options
            ),
        )
        for i in range(plan.callers)
    ]
    clients += [("router", AsyncClient(front_a, **options)), ("direct", AsyncClient(a.url, **options))]
    groups = {name: Group() for name in GROUPS}
    samples: list[Sample] = []
    stop, stop_sampling = asyncio.Event(), asyncio.Event()
    with _attempts_logged(groups):
        sampler = asyncio.create_task(_sample(router, samples, stop_sampling))
        began = time.monotonic()
        callers = [asyncio.create_task(_caller(c, name, groups, plan, stop)) for name, c in clients]
        await asyncio.sleep(plan.steady)
        killed = time.monotonic()
        await asyncio.to_thread(a.kill)
        await asyncio.sleep(plan.outage - (time.monotonic() - killed))
        restarting = time.monotonic()
        await asyncio.to_thread(a.restart)
        back = time.monotonic()
        await asyncio.sleep(plan.after)
        stop.set()
        await asyncio.gather(*callers)
        ended = time.monotonic()
        await asyncio.sleep(2 * SAMPLE_SECONDS)
        stop_sampling.set()
        await sampler
    for _, client in clients:
        await client.close()
    return Report(plan, groups, samples, began, killed, restarting, back, ended)


def rehearse(plan: Plan) -> Report:
    """Start both regions and the router, run the rehearsal, stop everything."""
    with ExitStack() as stack:
        a, b = Region("a", **region_flags(plan.params)), Region("b", **region_flags(plan.params))
        stack.callback(a.stop)
        stack.callback(b.stop)
        start_regions([a, b])
        router = stack.enter_context(LocalHAProxy({"a": a.port, "b": b.port}, check=plan.check))
        router.wait_all_up()
        return asyncio.run(_run(plan, a, b, router))
