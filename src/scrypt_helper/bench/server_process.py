"""A server in a child process, for benchmarks and tests: started, waited for until it answers,
stopped by a signal (SIGKILL if it lingers), its output kept in a log file.

The one base of every server the project starts that way: a node and Redis
(``bench.local_servers``), the bare app of ``bench.refusals``, and the test harness's nginx, HAProxy
and Prometheus (``harness.daemons.Daemon``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

POLL_SECONDS = 0.05


class ChildProcess:
    """A subclass gives its ``command()`` and ``answers()``, and may set ``log_path`` (None: its
    output is discarded), ``environment()``, ``check_config()`` and the class settings below."""

    name = "server"
    stop_signal: int = signal.SIGTERM
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server answers yet; a refused connection counts as no."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The child's environment (None: this process's)."""
        return None

    def check_config(self) -> None:
        """Raise RuntimeError, with the server's words, if its own check refuses its configuration."""

    def logs(self) -> str:
        """Everything the server wrote so far."""
        return "" if self.log_path is None else read_log(self.log_path)

    def start(self, timeout: float | None = None) -> Self:
        self.check_config()
        if self.log_path is None:
            self.process = subprocess.Popen(
                self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.environment()
            )
        else:
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment()
                )
        self.wait_ready(self.start_timeout if timeout is None else timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll ``answers()`` until it is true. RuntimeError, with the logs, if the process exits
        first; TimeoutError, the process stopped, if time runs out."""
        assert self.process is not None
        wait_until_answering(self.name, self.process, self.answers, self.logs, timeout, self.stop)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float | None = None) -> int | None:
        """Ask the server to stop with ``stop_signal``, SIGKILL it if it lingers; its exit status
        (None if it never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def read_log(path: Path) -> str:
    """A server's log file as text; empty before the server has written one."""
    return path.read_text(errors="replace") if path.exists() else ""


def wait_until_answering(
    name: str,
    process: subprocess.Popen[Any],
    answers: Callable[[], bool],
    logs: Callable[[], str],
    timeout: float,
    stop: Callable[[], object],
) -> None:
    """Poll ``answers`` (a refused connection counts as no) until it is true. RuntimeError, with
    the server's logs, if ``process`` exits first; ``stop`` it and TimeoutError if time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{logs()}")
        try:
            if answers():
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(POLL_SECONDS)
    stop()
    raise TimeoutError(f"{name} did not answer within {timeout} s:\n{logs()}")
