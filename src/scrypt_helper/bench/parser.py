"""``scrypt-helper bench parser``: what a hostile body costs the event loop, and who waits for it.

Two figures of the security review:

- each adversarial body's parsing cost against a typical request padded to the same size
  (target: at most 3x), at the default body limit and at 16 times it, to show the cost grows
  linearly with the size;
- ``GET /__lbheartbeat__`` latency on a node, sent right behind 20 of the review's bodies at
  once (target: at most 50 ms), beside the same behind 20 bodies refused before decoding (what
  the HTTP handling alone costs) and the node's own CPU per round (the wait on a core of its own).

Parsing is timed in the parsing thread's CPU time, not wall-clock time, so that other
processes on a shared machine do not inflate it; each figure is the fastest of many rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from scrypt_helper.bench.engine import TINY_PARAMS
from scrypt_helper.bench.load import read_reply, request_bytes
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.core import errors
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.core.scrypt_request import parse_request
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.observability.process_usage import cpu_seconds
from scrypt_helper_client import request_body

SIZE = 4095  # the review's: one byte under the default --max-body-bytes
LARGE_SIZE = 16 * 4096 - 1
IN_FLIGHT = 20  # the review's count of concurrent bodies
RATIO_TARGET = 3.0
HEARTBEAT_TARGET_MS = 50.0
ALLOWED = (PICL_PARAMS,)


def pad_to(body: bytes, size: int) -> bytes:
    """``body`` followed by JSON whitespace up to exactly ``size`` bytes."""
    return body + b" " * (size - len(body))


def fill(prefix: bytes, unit: bytes, suffix: bytes, size: int) -> bytes:
    """``prefix``, ``unit`` as often as fits, ``suffix``: ``size`` bytes."""
    return pad_to(prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix, size)


def typical_body(size: int, pad: bytes = b"x", close: bytes = b'"}') -> bytes:
    """A valid request whose unknown key ``pad`` holds a string filling it up to ``size`` bytes."""
    head = json.dumps(request_body(PICL_PARAMS, bytes(range(32)))).encode()[:-1] + b', "pad": "'
    return fill(head, pad, close, size)


def review_body(size: int) -> bytes:
    """The review's worst case: one ``"`` followed by ``\\"`` repeated, a string never closed."""
    return fill(b'"', b'\\"', b"", size)


def hostile_bodies(size: int) -> dict[str, bytes]:
    """Bodies built to cost the parser the most per byte, each ``size`` bytes long."""
    distinct = b'{"k0":0' + b"".join(b',"k%d":0' % i for i in range(1, size)) + b"}"
    input_and_salt = json.dumps({"input": "00", "salt": PICL_PARAMS.salt.decode()}).encode()[:-1]
    return {
        "escaped quotes (review)": review_body(size),
        "escaped quotes in a value": typical_body(size, b'\\"'),
        "unicode escapes in a value": typical_body(size, b"\\u00e9"),
        "two-byte characters in a value": typical_body(size, "é".encode()),
        "deep arrays": fill(b'{"x": ', b"[", b"", size),
        "deep objects": fill(b'{"x": ', b'{"a":', b"", size),
        "deep arrays in input": fill(b'{"input": ', b"[", b"", size),
        "many keys": fill(b"{", b'"":0,', b'"":0}', size),
        "many distinct keys": pad_to(distinct[: distinct.rindex(b",", 0, size - 1)] + b"}", size),
        "many numbers": fill(b'{"x": [', b"0,", b"0]}", size),
        "many empty objects": fill(b'{"x": [', b"{},", b"{}]}", size),
        "many empty strings": fill(b'{"x": [', b'"",', b'""]}', size),
        "long integer in N": fill(input_and_salt + b', "N": ', b"9", b"}", size),
        "long integer elsewhere": fill(b'{"x": ', b"9", b"}", size),
        "long fraction": fill(b'{"x": 0.', b"9", b"}", size),
        "long input": fill(b'{"input": "', b"ab", b'"}', size),
        "UTF-16": typical_body(size).decode().encode("utf-16-le")[:size],
        "stray byte at the end": typical_body(size, close=b'\xff"}'),
    }


def outcome(body: bytes) -> int:
    """The errno ``parse_request`` gives ``body`` (0 for a job)."""
    try:
        parse_request(body, ALLOWED)
    except errors.ApiError as error:
        return int(error.errno)
    return 0


def cpu_seconds_per_call(call: Callable[[], object], batch: int) -> float:
    """The thread CPU time of ``batch`` calls, per call."""
    started = time.thread_time_ns()
    for _ in range(batch):
        call()
    return (time.thread_time_ns() - started) / batch / 1e9


def parse_costs(size: int, rounds: int = 40, batch: int = 100) -> dict[str, Any]:
    """Each hostile body's parse time against the typical body's, at ``size`` bytes."""
    bodies = {"typical": typical_body(size), **hostile_bodies(size)}
    # Interleaved rounds: a slow spell of the machine hits every body alike.
    best = dict.fromkeys(bodies, float("inf"))
    for _ in range(rounds):
        for name, body in bodies.items():
            best[name] = min(best[name], cpu_seconds_per_call(lambda body=body: outcome(body), batch))
    typical = best["typical"]
    rows = {
        name: {
            "bytes": len(body),
            "us": round(best[name] * 1e6, 2),
            "ratio": round(best[name] / typical, 2),
            "errno": outcome(body),
        }
        for name, body in bodies.items()
    }
    worst = max((name for name in rows if name != "typical"), key=lambda name: rows[name]["ratio"])
    return {"size": size, "bodies": rows, "worst": worst, "worst_ratio": rows[worst]["ratio"]}


HEARTBEAT = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: bench\r\n\r\n"


async def heartbeat_ms(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    """One ``GET /__lbheartbeat__`` on a keep-alive connection: its latency in ms."""
    began = time.perf_counter()
    writer.write(HEARTBEAT)
    answer = await read_reply(reader)
    if answer.status != 200:
        raise RuntimeError(f"__lbheartbeat__ answered {answer.status}")
    return (time.perf_counter() - began) * 1000


async def bursts(node: LocalServer, body: bytes | None, seconds: float) -> dict[str, Any]:
    """Rounds of IN_FLIGHT copies of ``body`` sent at once, then a heartbeat behind them.

    The heartbeat goes out last, so the node reads it after every body of the round: its
    latency is what those bodies cost the event loop. ``body=None`` sends the heartbeat alone.
    """
    assert node.process is not None
    streams = [await asyncio.open_connection(node.host, node.port) for _ in range(IN_FLIGHT if body else 0)]
    beat_reader, beat_writer = await asyncio.open_connection(node.host, node.port)
    request = request_bytes(node.host, node.port, body or b"")
    cpu_before = cpu_seconds(node.process.pid)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    stop_at = time.monotonic() + seconds
    try:
        while time.monotonic() < stop_at:
            for _, writer in streams:
                writer.write(request)
            latencies.append(await heartbeat_ms(beat_reader, beat_writer))
            for answer in await asyncio.gather(*(read_reply(reader) for reader, _ in streams)):
                statuses[answer.status] += 1
            await asyncio.sleep(0.02)
    finally:
        for _, writer in [*streams, (beat_reader, beat_writer)]:
            writer.close()
    cpu_ms = (cpu_seconds(node.process.pid) - cpu_before) * 1000
    return {
        **latency_summary(latencies),
        "body_answers": {str(status): count for status, count in sorted(statuses.items())},
        # What a round costs the node in CPU: the heartbeat's wait on a core of its own.
        "node_cpu_ms_per_round": round(cpu_ms / len(latencies), 2),
    }


def latency_summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "rounds": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def heartbeat_behind_bodies(seconds: float, engine: str) -> dict[str, Any]:
    """Heartbeat latency alone, behind IN_FLIGHT bodies refused before decoding, behind the review's."""
    allowed = allowed_params_json(TINY_PARAMS)
    cases = {
        "alone": None,
        # Refused before decoding (not UTF-8): what the HTTP stack costs, for comparison.
        "behind bodies refused undecoded": hostile_bodies(SIZE)["stray byte at the end"],
        "behind the review's body": review_body(SIZE),
    }
    report = {}
    with LocalServer(engine=engine, allowed_params=allowed, workers=1, rules="", log_level="WARNING") as node:
        for label, body in cases.items():
            progress(f"__lbheartbeat__ {label} for {seconds:.0f} s")
            report[label] = asyncio.run(bursts(node, body, seconds))
    return report


def run_parser_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Both figures, printed, as one report."""
    progress(f"parse costs at {SIZE} and {LARGE_SIZE} bytes")
    report: dict[str, Any] = {"parse": [parse_costs(SIZE), parse_costs(LARGE_SIZE, rounds=20, batch=10)]}
    report["heartbeat"] = heartbeat_behind_bodies(args.seconds, args.engine)
    print_parser_report(report)
    return report


def print_parser_report(report: dict[str, Any]) -> None:
    small, large = report["parse"]
    print(f"\n{'body':<32}{'errno':>6}{small['size']:>9} B{'x typical':>11}{large['size']:>9} B{'growth':>8}")
    for name, row in small["bodies"].items():
        big = large["bodies"][name]
        print(
            f"{name:<32}{row['errno']:>6}{row['us']:>8.1f}us{row['ratio']:>10.2f}x"
            f"{big['us']:>8.1f}us{big['us'] / row['us']:>7.1f}x"
        )
    verdict = "within" if small["worst_ratio"] <= RATIO_TARGET else "OVER"
    print(
        f"worst at {small['size']} B: {small['worst']}, {small['worst_ratio']:.2f}x typical "
        f"({verdict} the {RATIO_TARGET:.0f}x target); growth is the cost at {large['size']} B over "
        f"{small['size']} B ({(large['size'] + 1) // (small['size'] + 1)}x the bytes)"
    )
    beat = report["heartbeat"]
    header = f"{'__lbheartbeat__, 20 bodies ahead':<32}{'rounds':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    print(f"\n{header}{'node CPU/round':>16}")
    for label, row in beat.items():
        print(
            f"{label:<32}{row['rounds']:>7}{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}{row['max_ms']:>8.1f}"
            f"{row['node_cpu_ms_per_round']:>13.1f} ms"
        )
    worst = beat["behind the review's body"]["max_ms"]
    verdict = "within" if worst <= HEARTBEAT_TARGET_MS else "OVER"
    print(f"max behind the review's body: {worst:.1f} ms ({verdict} the {HEARTBEAT_TARGET_MS:.0f} ms target)")
