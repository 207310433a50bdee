"""A bare ASGI app on the node's server stack: what HTTP alone costs, beside which a refusal is judged.

It answers every request ``200 OK`` without reading its body, on uvicorn with httptools and uvloop,
in as many processes as the node it is compared with. ``python -m scrypt_helper.bench.bare_app``
serves it; ``BareServer`` starts that as a child process.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

from scrypt_helper.bench.local_servers import free_port
from scrypt_helper.bench.server_process import ChildProcess
from scrypt_helper.bench.tls import http_get

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"2")],
}
_BODY = {"type": "http.response.body", "body": b"OK"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``200 OK`` to every HTTP request, its body never read."""
    if scope["type"] == "http":
        await send(_START)
        await send(_BODY)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        "scrypt_helper.bench.bare_app:app",
        host=args.host,
        port=args.port,
        workers=args.processes,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
    )


class BareServer(ChildProcess):
    """The bare app in a child process on a free loopback port."""

    name = "the bare app"

    def __init__(self, processes: int = 1, startup_timeout: float = 30.0) -> None:
        super().__init__()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.processes = processes
        self.start_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "scrypt_helper.bench.bare_app", "--port", str(self.port)]
        return [*argv, "--processes", str(self.processes)]

    def answers(self) -> bool:
        return http_get(self.url, timeout=1).status_code == 200


if __name__ == "__main__":
    main()
