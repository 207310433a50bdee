"""A flood of refused requests at a fixed rate beside an honest client.

The node trusts one proxy hop and keeps its built-in rules. The flood is open loop and paced at a
fixed rate (a flood at the generator's top speed would measure the generator, and would hide CPU
that cheaper refusals free), each request from a fresh random IPv6 address in its own /56, with a
body whose ``N`` is not allowed: no rate limit can stop such a flood, so every request takes the
whole refusal path (identify, the limit checks, read the body, parse) and is answered 400. Beside
it, a few honest clients hash in a closed loop, each request from another address, while
``__lbheartbeat__`` is asked every 20 ms; both first without the flood, then under it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from scrypt_helper.bench.hash_load import LoadFigure, hash_clients, percentile
from scrypt_helper.bench.load import OpenLoop, OpenLoopResult, Reply, Requests, Schedule, closed_loop, get
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.refusals import RoundError, check_round
from scrypt_helper.engines import ScryptParams
from scrypt_helper.observability.process_usage import tree_cpu_seconds
from scrypt_helper_client import request_body

FLOOD_RATE = 2000.0
HONEST_CLIENTS = 4
BEAT_INTERVAL = 0.02
LEAD_SECONDS = 0.5  # the flood runs this long before the honest client starts, and after it ends


# A node the flood meets: behind one trusted proxy (each request's fresh address is believed), with
# connections for the flood's open loop; with its built-in rules, since none are given.
FLOOD_NODE_FLAGS: dict[str, object] = {"trusted_proxies": "1", "max_connections": 4096}


def flood_requests(host: str, port: int, params: ScryptParams) -> Requests:
    """Bodies refused 400 (``N`` not allowed), each from a fresh address behind the trusted proxy."""
    body = json.dumps({**request_body(params, bytes(32)), "N": params.n * 2}).encode()
    return Requests(host, port, body, clients="fresh_ipv6")


async def heartbeats(host: str, port: int, seconds: float) -> tuple[list[float], int]:
    """``GET /__lbheartbeat__`` every BEAT_INTERVAL on one keep-alive connection: the latencies in
    ms of those answered 200, and how many were not."""
    latencies: list[float] = []
    failed = 0

    def beat(reply: Reply | None, sent_at: float, replied_at: float) -> None:
        nonlocal failed
        if reply is None or reply.status != 200:
            failed += 1
        else:
            latencies.append((replied_at - sent_at) * 1000)

    await closed_loop(
        get(host, port, "/__lbheartbeat__"),
        connections=1,
        seconds=seconds,
        on_reply=beat,
        pause=lambda reply: BEAT_INTERVAL,
    )
    return latencies, failed


async def honest_load(host: str, port: int, params: ScryptParams, seconds: float) -> dict[str, Any]:
    """The honest clients' figures and the heartbeat's, measured together at ``host:port``."""
    load: LoadFigure
    load, (beats, failed) = await asyncio.gather(
        hash_clients(f"http://{host}:{port}", params, HONEST_CLIENTS, seconds, clients="users"),
        heartbeats(host, port, seconds),
    )
    return {
        **load.summary(),
        "heartbeats": len(beats),
        "heartbeats_failed": failed,
        "heartbeat_p50_ms": round(percentile(beats, 50), 2),
        "heartbeat_p99_ms": round(percentile(beats, 99), 2),
    }


async def honest_client(node: LocalServer, params: ScryptParams, seconds: float) -> dict[str, Any]:
    """``honest_load`` at ``node``, with the cores its event loops used meanwhile (near 1 per
    process: the flood saturates them)."""
    assert node.process is not None
    cpu_before, started = tree_cpu_seconds(node.process.pid, main_threads=True), time.perf_counter()
    figure = await honest_load(node.host, node.port, params, seconds)
    loop_cpu = tree_cpu_seconds(node.process.pid, main_threads=True) - cpu_before
    return {**figure, "node_loop_cores": round(loop_cpu / (time.perf_counter() - started), 2)}


def flood_summary(result: OpenLoopResult) -> dict[str, Any]:
    return {
        "target_per_second": FLOOD_RATE,
        "sent_per_second": round(result.sent_per_second, 1),
        "answered_per_second": round(sum(result.statuses.values()) / result.seconds, 1),
        "statuses": {str(status): count for status, count in sorted(result.statuses.items())},
        "late_sends": result.late,
        "max_lag_ms": round(result.max_lag_ms, 1),
        "unsent": result.unsent,
        "unanswered": result.unanswered,
        "connections": result.connections,
        "generator_cores": round(result.cores, 2),
    }


def start_flood(host: str, port: int, params: ScryptParams, seconds: float) -> OpenLoop:
    """The paced flood at ``host:port``, running: started LEAD_SECONDS ago, and going on for
    ``seconds`` more and LEAD_SECONDS after them."""
    schedule = Schedule(FLOOD_RATE, seconds + 2 * LEAD_SECONDS, kind="paced")
    flood = OpenLoop(flood_requests(host, port, params), schedule, grace=5, warm=64).start()
    flood.wait_started()
    time.sleep(LEAD_SECONDS)
    return flood


def check_flood(result: OpenLoopResult, honest: dict[str, dict[str, Any] | None]) -> dict[int, int]:
    """The flood's answers by status, once every one is the 400 claimed and the honest clients of
    each phase (None: a phase not measured) had no failure: RoundError otherwise. A node that falls
    behind shows as failed connections (0), arrivals it left unanswered or no connection could be
    had for: figures, not errors."""
    answered = {status: count for status, count in result.statuses.items() if status != 0}
    check_round("flood", answered, 400)
    for phase, figure in honest.items():
        if figure is not None:
            check_honest(phase, figure)
    return answered


def check_honest(phase: str, figure: dict[str, Any]) -> None:
    """RoundError where the honest clients failed (an answer neither 200 nor 503) or a heartbeat
    was not answered 200 at a node: the figures would measure that, not the flood's cost."""
    if figure["failed"]:
        raise RoundError(f"the honest clients {phase} got {figure['failed']} answers neither 200 nor 503")
    if figure["heartbeats_failed"]:
        raise RoundError(f"{figure['heartbeats_failed']} heartbeats {phase} were not answered 200")


def measure_flood(
    params: ScryptParams, allowed: str, seconds: float, flags: dict[str, object]
) -> dict[str, Any]:
    """The honest client alone, then beside the paced flood, on one node with the built-in rules."""
    with LocalServer(**{"allowed_params": allowed, **FLOOD_NODE_FLAGS, **flags}) as node:
        alone = asyncio.run(honest_client(node, params, seconds))
        flood = start_flood(node.host, node.port, params, seconds)
        during = asyncio.run(honest_client(node, params, seconds))
        result = flood.result()
    # Any answer but the 400 claimed makes the flood another one; an honest client refused by a
    # rule, or failed, would measure that instead of the flood's cost.
    check_flood(result, {"alone": alone, "beside the flood": during})
    return {"alone": alone, "during_flood": during, "flood": flood_summary(result)}
