"""The same requests through ``wrk``, a load generator in C: a Python generator caps every rate it
measures, ``wrk`` far higher. Run when ``wrk`` is on PATH (Debian: ``apt-get install wrk``)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scrypt_helper.observability.process_usage import children_cpu_seconds

_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses: (\d+)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True, slots=True)
class WrkFigure:
    """One ``wrk`` run: responses, its duration, how many were not 2xx/3xx, socket errors."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_wrk(output: str) -> WrkFigure:
    """The counts in ``wrk``'s summary; ValueError when it has none."""
    done = _REQUESTS.search(output)
    if done is None:
        raise ValueError(f"no request count in wrk's output:\n{output}")
    non_2xx = _NON_2XX.search(output)
    errors = _SOCKET_ERRORS.search(output)
    return WrkFigure(
        requests=int(done[1]),
        seconds=float(done[2]) * _UNITS[done[3]],
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(count) for count in errors.groups()) if errors else 0,
    )


def post_script(body: bytes) -> str:
    """A ``wrk`` Lua script that POSTs ``body`` as JSON; no per-request Lua, so wrk stays lean."""
    # A JSON string is a valid Lua string literal for the ASCII bodies the benchmarks send.
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode('ascii'))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


async def run_wrk(url: str, body: bytes, *, connections: int, seconds: int) -> tuple[WrkFigure, float]:
    """``wrk -t1`` POSTing ``body`` for whole ``seconds``; its figure and the CPU seconds it used."""
    binary = wrk_path()
    if binary is None:
        raise FileNotFoundError("wrk is not on PATH")
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(post_script(body))
        before = children_cpu_seconds()
        process = await asyncio.create_subprocess_exec(
            binary,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        cpu = children_cpu_seconds() - before
    if process.returncode:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{output.decode(errors='replace')}")
    return parse_wrk(output.decode(errors="replace")), cpu
