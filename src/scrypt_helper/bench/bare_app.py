"""A bare ASGI app on the node's server stack: what HTTP alone costs, beside which a refusal is judged.

It answers every request ``200 OK`` without reading its body, on uvicorn with httptools and uvloop,
in as many processes as the node it is compared with. ``python -m scrypt_helper.bench.bare_app``
serves it; ``BareServer`` starts that as a child process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from scrypt_helper.launcher import free_port

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


class BareServer:
    """The bare app in a child process on a free loopback port."""

    def __init__(self, processes: int = 1, startup_timeout: float = 30.0) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.processes = processes
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BareServer:
        argv = [sys.executable, "-m", "scrypt_helper.bench.bare_app", "--port", str(self.port)]
        self.process = subprocess.Popen([*argv, "--processes", str(self.processes)])
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the bare app exited with {self.process.returncode}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the bare app was not ready after {self.startup_timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> BareServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
