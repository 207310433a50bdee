"""A response leaves the node in one write: a node killed mid-answer never leaves a proxy half an answer."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from scrypt_helper.http.edge import EdgeRefusals
from scrypt_helper.http.protocol import ConnectionLimits, protocol_factory
from scrypt_helper.observability.log import SummaryLog
from scrypt_helper.observability.metrics import Metrics


class RecordingTransport(asyncio.Transport):
    """A socket's transport that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"77")]})
    await send({"type": "http.response.body", "body": b"x" * 77})


async def test_headers_and_body_leave_in_one_write():
    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False, date_header=False)
    config.load()
    make_protocol = protocol_factory(ConnectionLimits(5, 10), EdgeRefusals(Metrics(), SummaryLog()))
    protocol = make_protocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    for _ in range(2):  # and again on the same keep-alive connection
        transport.writes.clear()
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n")
        for _ in range(20):
            await asyncio.sleep(0)
            if transport.writes:
                break
        await asyncio.sleep(0)
        assert len(transport.writes) == 1, transport.writes
        head, body = transport.writes[0].split(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert body == b"x" * 77
    protocol.connection_lost(None)
