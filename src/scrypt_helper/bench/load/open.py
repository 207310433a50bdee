"""Open-loop load: each request goes out at its scheduled arrival time, whatever the answers do.

A closed loop waits for an answer before its next request, so a slow node slows its own load and
overload never shows. Here arrivals follow a schedule (Poisson, or evenly paced) and each goes out
on an idle keep-alive connection, or on a new one when none is idle: no arrival ever waits for an
earlier answer. The generator runs in a process of its own (``bench.load.child``) on plain HTTP/1.1,
and reports the arrivals it could not send on time and the CPU it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Literal

from scrypt_helper.bench.load.child import CONTEXT, Child, run_async
from scrypt_helper.bench.load.closed import RequestSource
from scrypt_helper.observability.process_usage import cpu_seconds

# An arrival the generator started more than this after its time was not sent on time.
LATE_MS = 5.0
TIMER_RESOLUTION = 0.001  # the shortest sleep the event loop keeps
# Below the node's --max-connections that the overload bench sets, and the file limit.
MAX_CONNECTIONS = 4000


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


class _Connection(asyncio.Protocol):
    """One keep-alive connection of the generator. It sends a request and reports its answer's
    status through ``on_answer`` (0: the connection failed first), reading no more of the answer
    than its status line and framing headers; a protocol, not a stream, so that a request costs
    the generator no task and few awaits, and leaves the shared cores to the node."""

    def __init__(self, on_answer: Callable[[_Connection, int, bool], None]) -> None:
        self.on_answer = on_answer
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due = 0.0  # the arrival time of the request in flight
        self.waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, due: float) -> None:
        self.due, self.waiting = due, True
        self.transport.write(request)  # type: ignore[union-attr]

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and not self.waiting

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.waiting:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length :]
            self.waiting = False
            self.on_answer(self, int(head[9:12]), b"\r\nconnection: close" in head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting:
            self.waiting = False
            self.on_answer(self, 0, True)


async def generate(
    requests: RequestSource,
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
    idle: list[_Connection] = []
    opened: list[_Connection] = []
    in_flight = 0
    all_answered = asyncio.Event()
    start = end = 0.0

    def on_answer(connection: _Connection, status: int, close: bool) -> None:
        nonlocal in_flight
        done = loop.time()
        statuses[status] += 1
        latencies[status].append((done - connection.due) * 1000)
        result.ok_in_window += status == 200 and done <= end
        in_flight -= 1
        if close:
            if connection.transport is not None:
                connection.transport.close()
        else:
            idle.append(connection)
        if not in_flight:
            all_answered.set()

    async def new_connection() -> _Connection:
        if result.connections >= MAX_CONNECTIONS:
            raise ConnectionRefusedError("MAX_CONNECTIONS open")
        result.connections += 1
        _, connection = await loop.create_connection(
            lambda: _Connection(on_answer), requests.host, requests.port
        )
        opened.append(connection)
        return connection

    def send(connection: _Connection, due: float, request: bytes) -> None:
        nonlocal in_flight
        lag_ms = (loop.time() - due) * 1000
        result.max_lag_ms = max(result.max_lag_ms, lag_ms)
        result.late += lag_ms > LATE_MS
        result.sent += 1
        in_flight += 1
        all_answered.clear()
        connection.send(request, due)

    async def send_on_new(due: float, request: bytes) -> None:
        try:
            connection = await new_connection()
        except OSError:
            result.unsent += 1
            return
        send(connection, due, request)

    for _ in range(warm):
        idle.append(await new_connection())
    opening: set[asyncio.Task[None]] = set()
    cpu_before = cpu_seconds()
    start = loop.time() + 0.05
    end = start + schedule.seconds
    if on_start is not None:
        loop.call_at(start, on_start)
    index = 0
    while index < len(arrivals):
        now = loop.time()
        if start + arrivals[index] > now:
            # uvloop's timers count whole milliseconds: a shorter sleep returns at once, and the
            # generator would spin on the cores it shares with the node until the arrival is due.
            await asyncio.sleep(max(start + arrivals[index] - now, TIMER_RESOLUTION))
            continue
        # Everything due by now goes out in this pass: one timer per arrival would cost more.
        while index < len(arrivals) and start + arrivals[index] <= now:
            due, request = start + arrivals[index], requests.make(rng, index + 1)
            while idle and not idle[-1].usable():
                idle.pop()  # the server closed it while it was idle
            if idle:
                send(idle.pop(), due, request)  # the most recently used: the least likely to time out
            else:
                task = loop.create_task(send_on_new(due, request))
                opening.add(task)
                task.add_done_callback(opening.discard)
            index += 1
    if opening:
        await asyncio.wait(set(opening))
    if in_flight:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_answered.wait(), timeout=max(0.0, end - loop.time()) + grace)
    result.unanswered = in_flight
    result.wall_seconds = loop.time() - start
    result.cpu_seconds = cpu_seconds() - cpu_before
    for connection in opened:
        if connection.transport is not None:
            connection.transport.close()
    result.statuses = dict(statuses)
    result.latencies_ms = dict(latencies)
    return result


def _generate(
    requests: RequestSource, schedule: Schedule, grace: float, warm: int, started: Event
) -> OpenLoopResult:
    return run_async(generate(requests, schedule, grace, warm, started.set))


class OpenLoop:
    """``generate`` in a child process: ``start()``, ``wait_started()`` if needed, then ``result()``."""

    def __init__(self, requests: RequestSource, schedule: Schedule, *, grace: float, warm: int = 0) -> None:
        self.timeout = schedule.seconds + grace + 60
        self._started = CONTEXT.Event()
        self._child = Child(_generate, requests, schedule, grace, min(warm, MAX_CONNECTIONS), self._started)

    def start(self) -> OpenLoop:
        self._child.start()
        return self

    def wait_started(self, timeout: float = 60) -> None:
        """Block until the first arrival is due (the child has started and opened its connections)."""
        if not self._started.wait(timeout):
            raise TimeoutError(f"the open loop did not start within {timeout:.0f} s")

    def result(self) -> OpenLoopResult:
        return self._child.result(self.timeout)


def run_open_loop(
    requests: RequestSource, schedule: Schedule, *, grace: float, warm: int = 0
) -> OpenLoopResult:
    """Run an open loop in a child process and wait for it."""
    return OpenLoop(requests, schedule, grace=grace, warm=warm).start().result()
