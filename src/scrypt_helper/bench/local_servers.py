"""Start a real scrypt-helper node as a subprocess on a free port (benchmarks and tests)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import httpx

from scrypt_helper.bench.server_process import ChildProcess
from scrypt_helper.observability import process_usage


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer(ChildProcess):
    """``scrypt-helper serve`` in a child process; its stdout (the logs) goes to ``log_path``.

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
        self.log_path = Path(tempfile.mkstemp(prefix="scrypt-helper-", suffix=".log")[1])
        self._final_logs: str | None = None

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
        return httpx.get(f"{self.url}/__lbheartbeat__", timeout=1).status_code == 200

    def logs(self) -> str:
        """Everything the server printed so far (kept after the context exits)."""
        if self._final_logs is not None:
            return self._final_logs
        return super().logs()

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        assert self.process is not None
        return process_usage.resident_bytes(self.process.pid)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._final_logs = self.logs()
        assert self.log_path is not None
        self.log_path.unlink(missing_ok=True)


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
