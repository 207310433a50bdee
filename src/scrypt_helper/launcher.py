"""Start a real scrypt-helper node as a subprocess on a free port (benchmarks and tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from scrypt_helper import process_usage


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer:
    """``scrypt-helper serve`` in a child process; its stdout (the logs) goes to ``log_path``.

    ``flags`` are ``serve`` flags without dashes (``queue_size=4`` -> ``--queue-size 4``).
    """

    def __init__(
        self, *, startup_timeout: float = 60.0, env: dict[str, str] | None = None, **flags: object
    ) -> None:
        self.host = "127.0.0.1"
        self.port = int(flags.pop("port", None) or free_port())
        self.flags = {"host": self.host, "port": self.port, **flags}
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.log_path = Path(tempfile.mkstemp(prefix="scrypt-helper-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
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

    def start(self) -> LocalServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/__lbheartbeat__", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"server not ready after {self.startup_timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        """Everything the server printed so far (kept after the context exits)."""
        if self._final_logs is not None:
            return self._final_logs
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        assert self.process is not None
        return process_usage.resident_bytes(self.process.pid)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL if it did not exit; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._final_logs = self.logs()
        self.log_path.unlink(missing_ok=True)


class LocalRedis:
    """``redis-server`` on a free loopback port without persistence; ``stop``/``start`` keep the port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        if self.binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
