"""Closed-loop load: each connection sends a request, waits for its reply, and sends the next.

A closed loop measures what clients that wait for their answers get: capacity, latency, what a
refusal costs the node per answer. It stops after ``seconds``, after ``total`` requests, or when
``until()`` says so, whichever comes first. Each reply (None: the connection failed or timed out,
counted as status 0) goes to ``on_reply``; ``pause`` says how long its connection waits before the
next request, as a client honouring ``Retry-After`` would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from scrypt_helper.bench.load.child import Child, run_async
from scrypt_helper.bench.load.http1 import Reply, Stream, connect, read_reply
from scrypt_helper.observability.process_usage import cpu_seconds


class RequestSource(Protocol):
    """What makes a load's requests: ``bench.load.requests.Requests``, or any object like it."""

    host: str
    port: int

    def make(self, rng: random.Random, index: int) -> bytes: ...


#: Seconds a client waits before it tries again to connect, after a connection was refused.
RECONNECT_PAUSE = 0.05
#: Called with each reply (None: failed), and when its request went out and its reply came (monotonic).
ReplyObserver = Callable[[Reply | None, float, float], None]


@dataclass(slots=True)
class ClosedLoopResult:
    """Replies by status (0: the connection failed or timed out), requests sent, the run's length
    and the CPU the generator used meanwhile."""

    statuses: dict[int, int] = field(default_factory=dict)
    sent: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(status, 0) for status in statuses)


async def closed_loop(
    requests: RequestSource,
    *,
    connections: int,
    seconds: float | None = None,
    total: int | None = None,
    until: Callable[[], bool] | None = None,
    on_reply: ReplyObserver | None = None,
    pause: Callable[[Reply | None], float] | None = None,
    pool: list[Stream] | None = None,
    local_address: str | None = None,
    timeout: float | None = None,
    seed: int = 1,
) -> ClosedLoopResult:
    """Run ``connections`` clients in this event loop; see the module's description.

    ``pool``: open connections to use (one per client) and leave open, updated where one had to be
    opened again; ``local_address``: the address new connections come from; ``timeout``: seconds a
    reply may take before its connection counts as failed.
    """
    if seconds is None and total is None and until is None:
        raise ValueError("a closed loop needs seconds, total or until")
    if pool is not None and len(pool) != connections:
        raise ValueError("a pool holds one connection per client")
    rng = random.Random(seed)  # noqa: S311 - fresh inputs and addresses, not secrets
    statuses: Counter[int] = Counter()
    result = ClosedLoopResult()
    began = time.monotonic()
    stop_at = float("inf") if seconds is None else began + seconds
    cpu_before = cpu_seconds()

    def more() -> bool:
        if time.monotonic() >= stop_at or (total is not None and result.sent >= total):
            return False
        return until is None or not until()

    async def reply_to(stream: Stream, request: bytes) -> Reply | None:
        stream[1].write(request)
        try:
            return await asyncio.wait_for(read_reply(stream[0]), timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return None

    def count(reply: Reply | None, sent_at: float, replied_at: float) -> None:
        statuses[reply.status if reply else 0] += 1
        if on_reply is not None:
            on_reply(reply, sent_at, replied_at)

    async def client(slot: int) -> None:
        stream: Stream | None = pool[slot] if pool is not None else None
        try:
            while more():
                if stream is None or stream[0].at_eof() or stream[1].is_closing():
                    if stream is not None:  # the server closed it, or it failed
                        stream[1].close()
                    try:
                        stream = await connect(requests.host, requests.port, local_address)
                    except OSError:  # no connection to be had: a failed request, then a try again
                        stream = None
                        result.sent += 1
                        count(None, time.monotonic(), time.monotonic())
                        await asyncio.sleep(RECONNECT_PAUSE)
                        continue
                result.sent += 1
                request = requests.make(rng, result.sent)
                sent_at = time.monotonic()
                reply = await reply_to(stream, request)
                count(reply, sent_at, time.monotonic())
                if reply is None or reply.closes:
                    stream[1].close()
                wait = pause(reply) if pause is not None else 0.0
                if wait > 0:
                    await asyncio.sleep(wait)
        finally:
            if pool is not None and stream is not None:
                pool[slot] = stream
            elif stream is not None:
                stream[1].close()

    await asyncio.gather(*(client(slot) for slot in range(connections)))
    result.statuses = dict(statuses)
    result.seconds = time.monotonic() - began
    result.cpu_seconds = cpu_seconds() - cpu_before
    return result


def retry_after(reply: Reply | None) -> float:
    """A pause for ``closed_loop``: a 503's ``Retry-After``, as a client must honour it."""
    if reply is None or reply.status != 503:
        return 0.0
    return float(reply.headers.get("retry-after", 1))


def _in_child(
    requests: RequestSource, connections: int, seconds: float | None, total: int | None
) -> ClosedLoopResult:
    return run_async(closed_loop(requests, connections=connections, seconds=seconds, total=total))


class ClosedLoop:
    """``closed_loop`` in a process of its own, so that its CPU is not the caller's: ``start()``, then
    ``result()``."""

    def __init__(
        self,
        requests: RequestSource,
        *,
        connections: int,
        seconds: float | None = None,
        total: int | None = None,
    ) -> None:
        self.timeout = (seconds or 0) + 600
        self._child = Child(_in_child, requests, connections, seconds, total)

    def start(self) -> ClosedLoop:
        self._child.start()
        return self

    def result(self) -> ClosedLoopResult:
        return self._child.result(self.timeout)
