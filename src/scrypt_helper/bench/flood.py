"""Lean HTTP/1.1 over asyncio streams, and a flooder built on it.

General-purpose Python HTTP clients spend more CPU per request than the node spends
refusing one (and their connection pools slow down with hundreds of connections), which
on a small machine would measure the load generator instead of the node. The benchmarks
speak plain HTTP/1.1 keep-alive themselves; the flood runs in a process of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass


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
