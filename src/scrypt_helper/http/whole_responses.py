"""Send each response in one write, so that a node killed mid-answer leaves nothing half sent.

uvicorn writes a response's status line and headers, then its body, in two writes. A node
killed between them (SIGKILL, the OOM killer) leaves a proxy holding the headers of an answer
whose body never comes. The proxy has already passed them on, so it cannot retry the request on
another node, and the client gets a broken answer. Gathering the writes made in one turn of the
event loop sends headers and body of an ordinary response together: a proxy then gets either
the whole answer or none of it, and retries the latter.
"""

from __future__ import annotations

import asyncio
from typing import Any


class WholeResponseTransport:
    """Wraps a transport: writes made in one event-loop turn leave as one write at its end."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what was written so far to the real transport, in one write."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, pause_reading, get_extra_info, ...) is the real transport's.
        return getattr(self._transport, name)
