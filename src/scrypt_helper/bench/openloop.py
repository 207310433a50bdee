"""Open-loop load: each request goes out at its scheduled arrival time, whatever the answers do.

A closed loop waits for an answer before its next request, so a slow node slows its own load and
overload never shows. Here arrivals follow a schedule (Poisson, or evenly paced) and each goes out
on an idle keep-alive connection, or on a new one when none is idle: no arrival ever waits for an
earlier answer. The generator runs in a process of its own (``bench.child``) on plain HTTP/1.1
(``bench.flood``), and reports the arrivals it could not send on time and the CPU it used.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import resource
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Literal

from scrypt_helper.bench.child import Child, run_async
from scrypt_helper.bench.flood import prepared_request, random_ipv6, read_answer
from scrypt_helper.engines import ScryptParams
from scrypt_helper.wire import request_body

# An arrival the generator started more than this after its time was not sent on time.
LATE_MS = 5.0
# Below the node's --max-connections that the overload bench sets, and the file limit.
MAX_CONNECTIONS = 4000
_INPUT = b"0" * 64  # the hex of 32 zero bytes: where a fresh input goes


@dataclass(frozen=True, slots=True)
class Schedule:
    """Arrival times over ``seconds``: a Poisson process (``poisson``) or evenly ``paced``."""

    rate: float
    seconds: float
    kind: Literal["poisson", "paced"] = "poisson"
    seed: int = 1

    def arrivals(self) -> list[float]:
        """Offsets in seconds from the start, ascending, all below ``seconds``."""
        if self.kind == "paced":
            return [i / self.rate for i in range(int(self.rate * self.seconds))]
        rng = random.Random(self.seed)  # noqa: S311 - a reproducible schedule, not a secret
        offsets, at = [], rng.expovariate(self.rate)
        while at < self.seconds:
            offsets.append(at)
            at += rng.expovariate(self.rate)
        return offsets


@dataclass(frozen=True, slots=True)
class RequestMaker:
    """How each request of a load is made: ``POST /`` with ``body``; with ``fresh_input``, a random
    32-byte input in place of the placeholder; with ``fresh_address``, an ``X-Forwarded-For`` of a
    random IPv6 address, as a trusted proxy forwards a new client."""

    host: str
    port: int
    body: bytes
    fresh_input: bool = False
    fresh_address: bool = False

    def make(self, rng: random.Random) -> bytes:
        body = self.body
        if self.fresh_input:
            body = body.replace(_INPUT, b"%064x" % rng.getrandbits(256), 1)
        headers = {"X-Forwarded-For": random_ipv6(rng)} if self.fresh_address else {}
        return prepared_request(self.host, self.port, body, headers)


def hash_requests(host: str, port: int, params: ScryptParams, *, fresh_address: bool = False) -> RequestMaker:
    """Valid hash requests for ``params``, each for a fresh random input."""
    body = json.dumps(request_body(params, bytes(32))).encode()
    if body.count(_INPUT) != 1:
        raise ValueError("the salt must not contain the input placeholder")
    return RequestMaker(host, port, body, fresh_input=True, fresh_address=fresh_address)


@dataclass(slots=True)
class OpenLoopResult:
    """What one open-loop run saw. Latencies run from each arrival's scheduled time to its answer."""

    seconds: float
    offered: int
    sent: int = 0
    late: int = 0
    unsent: int = 0  # no connection could be had (MAX_CONNECTIONS, or the node refused to connect)
    unanswered: int = 0  # sent, but no answer by the end of the grace period
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: dict[int, list[float]] = field(default_factory=dict, repr=False)
    ok_in_window: int = 0  # 200s answered before the last arrival's window closed
    max_lag_ms: float = 0.0
    connections: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def ok_per_second(self) -> float:
        """Goodput: 200s answered within the arrival window, per second of it."""
        return self.ok_in_window / self.seconds

    @property
    def sent_per_second(self) -> float:
        return self.sent / self.seconds

    @property
    def cores(self) -> float:
        """Cores the generator used while it ran."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def generate(
    maker: RequestMaker,
    schedule: Schedule,
    grace: float,
    warm: int,
    on_start: Callable[[], object] | None = None,
) -> OpenLoopResult:
    """Send every arrival of ``schedule``; wait up to ``grace`` seconds after the last for answers.

    ``warm`` connections are opened first; ``on_start`` is called as the first arrival is due.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(schedule.seed)  # noqa: S311 - fresh inputs and addresses, not secrets
    arrivals = schedule.arrivals()
    result = OpenLoopResult(seconds=schedule.seconds, offered=len(arrivals))
    statuses: Counter[int] = Counter()
    latencies: defaultdict[int, list[float]] = defaultdict(list)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    writers: list[asyncio.StreamWriter] = []

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            reader, writer = idle.pop()  # the most recently used: the least likely to have timed out
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await new_connection()

    async def new_connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if result.connections >= MAX_CONNECTIONS:
            raise ConnectionRefusedError("MAX_CONNECTIONS open")
        result.connections += 1
        reader, writer = await asyncio.open_connection(maker.host, maker.port)
        writers.append(writer)
        return reader, writer

    async def one(at: float, request: bytes) -> None:
        lag_ms = (loop.time() - at) * 1000
        result.max_lag_ms = max(result.max_lag_ms, lag_ms)
        result.late += lag_ms > LATE_MS
        try:
            reader, writer = await connection()
        except OSError:
            result.unsent += 1
            return
        result.sent += 1
        writer.write(request)
        try:
            answer = await read_answer(reader)
        except (OSError, asyncio.IncompleteReadError):
            statuses[0] += 1
            writer.close()
            return
        done = loop.time()
        statuses[answer.status] += 1
        latencies[answer.status].append((done - at) * 1000)
        result.ok_in_window += answer.status == 200 and done <= end
        if answer.headers.get("connection") == "close":
            writer.close()
        else:
            idle.append((reader, writer))

    for _ in range(warm):
        idle.append(await new_connection())
    tasks: set[asyncio.Task[None]] = set()
    cpu_before = _cpu_seconds()
    start = loop.time() + 0.05
    end = start + schedule.seconds
    if on_start is not None:
        loop.call_at(start, on_start)
    index = 0
    while index < len(arrivals):
        now = loop.time()
        if start + arrivals[index] > now:
            await asyncio.sleep(start + arrivals[index] - now)
            continue
        # Everything due by now goes out in this pass: one timer per arrival would cost more.
        while index < len(arrivals) and start + arrivals[index] <= now:
            task = loop.create_task(one(start + arrivals[index], maker.make(rng)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=max(0.0, end - loop.time()) + grace)
        for task in pending:
            task.cancel()
        result.unanswered = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    result.wall_seconds = loop.time() - start
    result.cpu_seconds = _cpu_seconds() - cpu_before
    for writer in writers:
        writer.close()
    result.statuses = dict(statuses)
    result.latencies_ms = dict(latencies)
    return result


def _generate(
    maker: RequestMaker, schedule: Schedule, grace: float, warm: int, started: Event
) -> OpenLoopResult:
    return run_async(generate(maker, schedule, grace, warm, started.set))


class OpenLoop:
    """``generate`` in a child process: ``start()``, ``wait_started()`` if needed, then ``result()``."""

    def __init__(self, maker: RequestMaker, schedule: Schedule, *, grace: float, warm: int = 0) -> None:
        self.timeout = schedule.seconds + grace + 60
        self._started = multiprocessing.get_context("spawn").Event()
        self._child = Child(_generate, maker, schedule, grace, min(warm, MAX_CONNECTIONS), self._started)

    def start(self) -> OpenLoop:
        self._child.start()
        return self

    def wait_started(self, timeout: float = 60) -> None:
        """Block until the first arrival is due (the child has started and opened its connections)."""
        if not self._started.wait(timeout):
            raise TimeoutError(f"the open loop did not start within {timeout:.0f} s")

    def result(self) -> OpenLoopResult:
        return self._child.result(self.timeout)


def run_open_loop(maker: RequestMaker, schedule: Schedule, *, grace: float, warm: int = 0) -> OpenLoopResult:
    """Run an open loop in a child process and wait for it."""
    return OpenLoop(maker, schedule, grace=grace, warm=warm).start().result()
