"""A lean HTTP/1.1 flooder: many keep-alive connections repeating one prepared request.

Python HTTP clients spend more CPU per request than the node spends refusing one, so the
flood uses raw asyncio streams in a process of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter


def prepared_request(host: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        "POST / HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(host: str, port: int, request: bytes, stop_at: float, statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
            statuses[status] += 1
            if close:
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
