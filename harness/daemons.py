"""The test harness's servers (nginx, HAProxy, Prometheus): one base class, ``Daemon``, that starts
one, waits until it answers and stops it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx


def wait_until_answering(
    name: str,
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    logs: Callable[[], str],
    timeout: float,
    stop: Callable[[], None],
) -> None:
    """Poll ``answers`` (a connection refused counts as no) until it is true. Raise RuntimeError,
    with the server's logs, if the process exits first; ``stop`` it and raise TimeoutError if time
    runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{logs()}")
        try:
            if answers():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop()
    raise TimeoutError(f"{name} did not answer within {timeout} s:\n{logs()}")


def read_log(path: Path) -> str:
    """A server's log file as text; empty before the server has written one."""
    return path.read_text(errors="replace") if path.exists() else ""


def stop_process(process: subprocess.Popen[bytes] | None, signal_number: int, timeout: float) -> None:
    """Ask a running server to stop with ``signal_number``; SIGKILL it if it lingers."""
    if process is not None and process.poll() is None:
        process.send_signal(signal_number)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Daemon:
    """A server the harness runs in the foreground, in a work directory of its own: its
    configuration checked, started with its output in ``log_name``, waited for until it
    ``answers()``, stopped with ``stop_signal`` (SIGKILL if it lingers), its directory removed.

    A subclass names itself, builds its configuration in ``workdir`` and gives its ``command()``
    and ``answers()``; ``check_config()`` runs the server's own check of it, where it has one."""

    name = "daemon"
    stop_signal: int = signal.SIGTERM
    log_name = "stderr.log"
    start_timeout = 15.0
    stop_timeout = 10.0

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"scrypt-helper-{self.name}-"))
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server answers yet (a refused connection counts as no)."""
        raise NotImplementedError

    def check_config(self) -> None:
        """Raise RuntimeError, with the server's words, if its own check refuses the configuration."""

    def logs(self) -> str:
        return read_log(self.workdir / self.log_name)

    def start(self, timeout: float | None = None) -> Self:
        self.check_config()
        with (self.workdir / self.log_name).open("wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=log)
        wait_until_answering(
            self.name, self.process, self.answers, self.logs, timeout or self.start_timeout, self.stop
        )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the server to stop with ``stop_signal``; SIGKILL it if it lingers."""
        stop_process(self.process, self.stop_signal, timeout or self.stop_timeout)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.cleanup()


def run_check(command: list[str], what: str) -> None:
    """Run a server's own configuration check; RuntimeError with its output if it refuses."""
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{checked.stdout}{checked.stderr}")
