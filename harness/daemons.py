"""Starting the test harness's servers (nginx, HAProxy, Prometheus): wait until one answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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
