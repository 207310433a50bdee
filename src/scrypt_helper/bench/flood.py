"""Lean HTTP/1.1 over asyncio streams, and a flooder built on it.

General-purpose Python HTTP clients spend more CPU per request than the node spends
refusing one (and their connection pools slow down with hundreds of connections), which
on a small machine would measure the load generator instead of the node. The benchmarks
speak plain HTTP/1.1 keep-alive themselves; the flood runs in a process of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import random
import time
from collections import Counter
from dataclasses import dataclass

from scrypt_helper.observability.process_usage import cpu_seconds


def prepared_request(host: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        "POST / HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Read one response with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return Answer(int(lines[0].split(" ", 2)[1]), headers, body)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, statuses: Counter[int]
) -> bool:
    """Send one request and read its answer, counting its status (0: the connection failed).

    True when the connection must be opened again (it failed, or the server closes it).
    """
    writer.write(request)
    try:
        answer = await read_answer(reader)
    except (OSError, asyncio.IncompleteReadError):
        statuses[0] += 1
        return True
    statuses[answer.status] += 1
    return answer.headers.get("connection") == "close"


async def _connection(host: str, port: int, request: bytes, stop_at: float, statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            answer = await read_answer(reader)
            statuses[answer.status] += 1
            if answer.headers.get("connection") == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    except (ConnectionError, asyncio.IncompleteReadError):
        statuses[0] += 1
    finally:
        writer.close()


async def _flood(host: str, port: int, request: bytes, connections: int, seconds: float) -> dict[int, int]:
    statuses: Counter[int] = Counter()
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(_connection(host, port, request, stop_at, statuses) for _ in range(connections)))
    return dict(statuses)


def _run(
    host: str, port: int, request: bytes, connections: int, seconds: float, out: multiprocessing.Queue
) -> None:
    out.put(asyncio.run(_flood(host, port, request, connections, seconds)))


class Flood:
    """Start a flood in a child process; ``result()`` waits and returns responses by status."""

    def __init__(self, host: str, port: int, request: bytes, *, connections: int, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._out: multiprocessing.Queue = context.Queue()
        self._process = context.Process(
            target=_run, args=(host, port, request, connections, seconds, self._out), daemon=True
        )
        self.seconds = seconds

    def start(self) -> Flood:
        self._process.start()
        return self

    def result(self) -> dict[int, int]:
        statuses = self._out.get(timeout=self.seconds + 60)
        self._process.join(10)
        return statuses


def forwarded_get(host: str, port: int, address: str) -> bytes:
    """``GET /`` as a trusted proxy forwards it for a client at ``address``."""
    return f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nX-Forwarded-For: {address}\r\n\r\n".encode()


def random_ipv6(rng: random.Random) -> str:
    """A random address of 2001:db8::/32, all eight groups written out, as fresh clients send."""
    bits = rng.getrandbits(96)
    return "2001:db8:" + ":".join(f"{bits >> shift & 0xFFFF:x}" for shift in range(80, -16, -16))


@dataclass(frozen=True, slots=True)
class TenthsResult:
    """Answers by status (0: a dropped connection); at the start and at each further tenth of the
    requests answered (11 marks), the monotonic time and the CPU seconds the server had used."""

    statuses: dict[int, int]
    marks: list[float]
    server_cpu: list[float]


async def _tenths(host: str, port: int, total: int, connections: int, seed: int, pid: int) -> TenthsResult:
    rng = random.Random(seed)  # noqa: S311 - addresses to look fresh, not secrets
    statuses: Counter[int] = Counter()
    tenth = total // 10
    marks = [time.monotonic()]
    server_cpu = [cpu_seconds(pid)]
    sent = answered = 0

    async def connection() -> None:
        nonlocal sent, answered
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while sent < total:
                sent += 1
                reopen = await exchange(reader, writer, forwarded_get(host, port, random_ipv6(rng)), statuses)
                answered += 1
                if answered % tenth == 0:
                    marks.append(time.monotonic())
                    server_cpu.append(cpu_seconds(pid))
                if reopen:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return TenthsResult(dict(statuses), marks, server_cpu)


def _run_tenths(
    host: str, port: int, total: int, connections: int, seed: int, pid: int, out: multiprocessing.Queue
) -> None:
    out.put(asyncio.run(_tenths(host, port, total, connections, seed, pid)))


class DistinctFlood:
    """``total`` ``GET /`` requests, each from a fresh random IPv6 address behind one trusted proxy,
    to the server process ``pid``, from a child process; ``result()`` waits and returns the answers
    and each tenth's time and server CPU time."""

    def __init__(
        self, host: str, port: int, pid: int, *, total: int, connections: int, seed: int = 1
    ) -> None:
        if total < 10 or total % 10:
            raise ValueError("total must be a positive multiple of 10")
        context = multiprocessing.get_context("spawn")
        self._out: multiprocessing.Queue = context.Queue()
        self._process = context.Process(
            target=_run_tenths, args=(host, port, total, connections, seed, pid, self._out), daemon=True
        )

    def start(self) -> DistinctFlood:
        self._process.start()
        return self

    def running(self) -> bool:
        return self._process.is_alive() and self._out.empty()

    def result(self, timeout: float) -> TenthsResult:
        """The child's result; RuntimeError if it died without one, queue.Empty after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result: TenthsResult = self._out.get(timeout=1)
                break
            except queue.Empty:
                if not self._process.is_alive() and self._out.empty():
                    raise RuntimeError(f"the flood process died (exit {self._process.exitcode})") from None
                if time.monotonic() > deadline:
                    raise
        self._process.join(10)
        return result
