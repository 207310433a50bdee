"""Lean HTTP/1.1 keep-alive over asyncio streams: a request's bytes, a reply read whole.

General-purpose Python HTTP clients spend more CPU per request than the node spends refusing one
(and their connection pools slow down with hundreds of connections), which on a small machine would
measure the load generator instead of the node. The generator speaks plain HTTP/1.1 itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def request_bytes(
    host: str, port: int, body: bytes | None, headers: Mapping[str, str] | None = None, *, path: str = "/"
) -> bytes:
    """``POST path`` with a JSON ``body``, or ``GET path`` when ``body`` is None, with ``headers``."""
    lines = [f"{'GET' if body is None else 'POST'} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        """The server closes the connection after it."""
        return self.headers.get("connection") == "close"


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """Read one response with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return Reply(int(lines[0].split(" ", 2)[1]), headers, body)


async def ask(stream: Stream, request: bytes) -> Reply:
    """Send one request on a keep-alive connection and read its reply."""
    stream[1].write(request)
    return await read_reply(stream[0])


async def connect(host: str, port: int, local_address: str | None = None) -> Stream:
    """A new connection, from ``local_address`` when given (loopback clients of distinct addresses)."""
    return await asyncio.open_connection(host, port, local_addr=(local_address, 0) if local_address else None)
