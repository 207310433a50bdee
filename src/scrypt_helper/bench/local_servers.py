"""Start a real scrypt-helper node as a subprocess on a free port (benchmarks and tests)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Self

from scrypt_helper.bench.server_process import ChildProcess
from scrypt_helper.bench.tls import http_get
from scrypt_helper.observability import process_usage


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer(ChildProcess):
    """``scrypt-helper serve`` in a child process; its stdout (the logs) goes to a temporary file
    from ``start`` to ``stop``, which keeps what it holds (``logs()``) and removes it.

    ``flags`` are ``serve`` flags without dashes (``queue_size=4`` -> ``--queue-size 4``). A local
    server stops at once (``drain_seconds=0``) unless the flags give it a drain: nothing balances
    load onto it that would need the time to move away.
    """

    name = "server"
    stop_timeout = 30.0

    def __init__(
        self, *, startup_timeout: float = 60.0, env: dict[str, str] | None = None, **flags: object
    ) -> None:
        super().__init__()
        self.host = "127.0.0.1"
        self.port = int(flags.pop("port", None) or free_port())
        self.flags = {"host": self.host, "port": self.port, "drain_seconds": 0, **flags}
        self.env = env or {}
        self.start_timeout = startup_timeout
        self._earlier_logs = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "scrypt_helper", "serve"]
        for name, value in self.flags.items():
            flag = name.replace("_", "-")
            if str(value).lower() in ("true", "false"):  # a boolean setting: --lock-memory, --no-lock-memory
                argv.append(f"--{flag}" if str(value).lower() == "true" else f"--no-{flag}")
            else:
                argv += [f"--{flag}", str(value)]
        return argv

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}

    def answers(self) -> bool:
        return http_get(f"{self.url}/__lbheartbeat__", timeout=1).status_code == 200

    def start(self, timeout: float | None = None) -> Self:
        self.log_path = Path(tempfile.mkstemp(prefix="scrypt-helper-", suffix=".log")[1])
        try:
            return super().start(timeout)
        except BaseException:
            self.stop()  # a server that never answered keeps no log file either
            raise

    def stop(self, timeout: float | None = None) -> int | None:
        code = super().stop(timeout)
        if self.log_path is not None:
            self._earlier_logs += super().logs()
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
        return code

    def logs(self) -> str:
        """Everything the server printed so far, over all its starts (kept after it stops)."""
        return self._earlier_logs + super().logs()

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        assert self.process is not None
        return process_usage.resident_bytes(self.process.pid)


class LocalRedis(ChildProcess):
    """``redis-server`` on a free loopback port without persistence; ``stop``/``start`` keep the port."""

    name = "redis-server"
    start_timeout = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.binary = shutil.which("redis-server")
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        if self.binary is None:
            raise FileNotFoundError("redis-server is not installed")
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    def answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
