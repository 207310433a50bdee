"""``scrypt-helper bench limits``: a node's memory and request rate under cheap requests from
distinct addresses.

A node behind one trusted proxy, with the built-in rules, receives ``--requests`` ``GET /``
requests (one million by default), each from a fresh random IPv6 address. Every one creates
rate-limit state; the in-memory store must stay within its cap (memory) without slowing down
(rate). Printed: the node's RSS when ready, after a warm-up, at the end and at its peak, and
the request rate of each tenth of the run, the first and last compared, with the node's CPU
per request (its capacity, whatever else the machine runs). On a shared machine, other load
moves those tenths; so batches then alternate between the node that ran and a new one, their
median rates compared, the start and the end of a run measured side by side. Then the guard
alone, in-process:
its cost per fresh address on a new store and on one that has seen as many addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import statistics
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from scrypt_helper.abuse import DEFAULT_RULES, ClientIdentity, Guard, LimitStore, parse_rules
from scrypt_helper.bench.load import Reply, closed_loop, get, random_ipv6
from scrypt_helper.bench.load.child import Child, run_async
from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.bench.report import progress
from scrypt_helper.core.config import Settings
from scrypt_helper.observability.process_usage import cpu_seconds

MIB = 1 << 20


def _pid(node: LocalServer) -> int:
    assert node.process is not None
    return node.process.pid


@dataclass(frozen=True, slots=True)
class TenthsResult:
    """Answers by status (0: a failed connection); at the start and at each further tenth of the
    requests answered (11 marks), the monotonic time and the CPU seconds the node had used."""

    statuses: dict[int, int]
    marks: list[float]
    server_cpu: list[float]


async def _tenths(host: str, port: int, pid: int, total: int, connections: int, seed: int) -> TenthsResult:
    tenth = total // 10
    marks, server_cpu = [time.monotonic()], [cpu_seconds(pid)]
    answered = 0

    def mark(reply: Reply | None, sent_at: float, replied_at: float) -> None:
        nonlocal answered
        answered += 1
        if answered % tenth == 0:
            marks.append(replied_at)
            server_cpu.append(cpu_seconds(pid))

    requests = get(host, port, "/", clients="fresh_ipv6")
    run = await closed_loop(requests, connections=connections, total=total, on_reply=mark, seed=seed)
    return TenthsResult(run.statuses, marks, server_cpu)


def _tenths_in_child(host: str, port: int, pid: int, total: int, connections: int, seed: int) -> TenthsResult:
    return run_async(_tenths(host, port, pid, total, connections, seed))


def distinct_gets(node: LocalServer, total: int, connections: int, seed: int = 1) -> Child[TenthsResult]:
    """``total`` ``GET /``, each from a fresh IPv6 address behind the trusted proxy, from a child
    process (started): each tenth's time and the node's CPU time."""
    if total < 10 or total % 10:
        raise ValueError("total must be a positive multiple of 10")
    return Child(_tenths_in_child, node.host, node.port, _pid(node), total, connections, seed).start()


def _send(node: LocalServer, total: int, connections: int, seed: int) -> TenthsResult:
    """``total`` requests from fresh addresses to ``node``; waits for the answers."""
    return distinct_gets(node, total, connections, seed).result(timeout=3600)


Endpoint = tuple[str, int, int]  # host, port and pid of a node


async def _alternate(
    first: Endpoint, second: Endpoint, batch: int, connections: int, rounds: int
) -> tuple[list[TenthsResult], list[TenthsResult]]:
    """``rounds`` batches to each node in turn, first ``first``: what each batch measured."""
    runs: tuple[list[TenthsResult], list[TenthsResult]] = ([], [])
    for round_ in range(rounds):
        for side, (host, port, pid) in enumerate((first, second)):
            runs[side].append(
                await _tenths(host, port, pid, batch, connections, seed=100 * (side + 1) + round_)
            )
    return runs


def _alternate_in_child(
    first: Endpoint, second: Endpoint, batch: int, connections: int, rounds: int
) -> tuple[list[TenthsResult], list[TenthsResult]]:
    return run_async(_alternate(first, second, batch, connections, rounds))


def _endpoint(node: LocalServer) -> Endpoint:
    return node.host, node.port, _pid(node)


def _rate_and_cpu(result: TenthsResult, total: int) -> tuple[float, float]:
    """Requests per second, and the node's CPU microseconds per request, over a whole batch."""
    seconds = result.marks[-1] - result.marks[0]
    return total / seconds, 1e6 * (result.server_cpu[-1] - result.server_cpu[0]) / total


def measure_limits(allowed: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the flood against one node and return its memory and rate figures.

    The node hashes nothing here; one hashlib worker keeps scrypt buffers out of its RSS. After
    the run, batches of a tenth's worth of requests alternate between that node and a new one
    (warmed up alike): its state at the end of the run against its state at the start, with
    whatever else the machine does weighing on both alike.
    """
    total = max(10, args.requests - args.requests % 10)
    # Fills code paths, allocator pools and the start of the limit tables before the first figure.
    warm_up = max(10, total // 500 * 10)
    connections = args.flood_connections
    flags: dict[str, object] = {
        "engine": "hashlib",
        "workers": 1,
        "allowed_params": allowed,
        "trusted_proxies": "1",
        "log_level": "WARNING",
    }
    if args.max_tracked_keys is not None:
        flags["max_tracked_keys"] = args.max_tracked_keys
    if args.redis_down:  # configured but unreachable: the node limits from its fall-back memory
        flags["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    with LocalServer(**flags) as node:
        rss_ready = node.rss_bytes()
        progress(f"warm-up: {warm_up} requests from distinct addresses")
        _send(node, warm_up, connections, seed=2)
        rss_start = node.rss_bytes()
        progress(f"{total} GET / from distinct addresses over {connections} connections")
        flood = distinct_gets(node, total, connections)
        peak = rss_start
        while flood.running():
            peak = max(peak, node.rss_bytes())
            time.sleep(0.5)
        result = flood.result(timeout=60)
        rss_end = node.rss_bytes()
        peak = max(peak, rss_end)
        with LocalServer(**flags) as new:
            progress("a new node: a tenth of the run in ten batches, alternating with the node that ran")
            _send(new, warm_up, connections, seed=3)
            batch = max(10, total // 100 // 10 * 10)
            # One generator process for all twenty batches, so that none pays for a process start.
            alternating = Child(_alternate_in_child, _endpoint(new), _endpoint(node), batch, connections, 10)
            new_runs, old_runs = alternating.start().result(timeout=3600)
            at_start = [_rate_and_cpu(run, batch) for run in new_runs]
            at_end = [_rate_and_cpu(run, batch) for run in old_runs]
    cap = args.max_tracked_keys or Settings.model_fields["max_tracked_keys"].default
    guard = measure_guard(total, cap)
    tenth = total // 10
    marks, cpu = result.marks, result.server_cpu
    rates = [round(tenth / (later - earlier), 1) for earlier, later in pairwise(marks)]
    # The node's own CPU per request: its capacity, whatever else the machine is running.
    cpu_us = [round(1e6 * (later - earlier) / tenth, 1) for earlier, later in pairwise(cpu)]
    start_rate = statistics.median(rate for rate, _ in at_start)
    end_rate = statistics.median(rate for rate, _ in at_end)
    start_cpu = statistics.median(us for _, us in at_start)
    end_cpu = statistics.median(us for _, us in at_end)
    return {
        "requests": total,
        "redis": "down (fall-back)" if args.redis_down else "none",
        "max_tracked_keys": cap,
        "responses": {str(status): count for status, count in sorted(result.statuses.items())},
        "seconds": round(marks[-1] - marks[0], 1),
        "rss_mib": {
            "ready": round(rss_ready / MIB, 1),
            "start": round(rss_start / MIB, 1),
            "end": round(rss_end / MIB, 1),
            "peak": round(peak / MIB, 1),
        },
        "rss_growth_mib": round((peak - rss_ready) / MIB, 1),
        "rate_per_tenth": rates,
        "rate_fall_percent": _fall(rates[0], rates[-1]),
        "node_cpu_us_per_request_per_tenth": cpu_us,
        # CPU time is counted in clock ticks: a tiny run may see none in a tenth.
        "node_capacity_fall_percent": _fall(cpu_us[-1], cpu_us[0]) if min(cpu_us) > 0 else None,
        "alternating": {
            "batches": 10,
            "batch_requests": batch,
            "median_rate": {"start": round(start_rate, 1), "end": round(end_rate, 1)},
            "median_node_cpu_us_per_request": {"start": round(start_cpu, 1), "end": round(end_cpu, 1)},
            "rate_fall_percent": _fall(start_rate, end_rate),
        },
        **guard,
    }


def _fresh_clients(rng: random.Random, count: int) -> list[ClientIdentity]:
    return [ClientIdentity(ipaddress.ip_address(random_ipv6(rng))) for _ in range(count)]


async def _cpu_us_per_admission(guard: Guard, clients: list[ClientIdentity]) -> float:
    started = time.process_time()
    for client in clients:
        await guard.admit_request(client)
    return 1e6 * (time.process_time() - started) / len(clients)


async def guard_cost_at_start_and_end(total: int, max_keys: int, rounds: int = 21) -> tuple[float, float]:
    """The limiter alone, in this process, on the built-in rules: median CPU microseconds per
    ``admit_request`` of a fresh address on a new store (a run's start) and on one that has
    seen ``total`` addresses (its end). Batches alternate between the two, so that whatever
    else the machine does weighs on both alike."""
    rng = random.Random(3)  # noqa: S311 - addresses to look fresh, not secrets
    rules = parse_rules(DEFAULT_RULES)
    used = Guard(rules, LimitStore(max_keys=max_keys))
    for done in range(0, total, 10_000):
        for client in _fresh_clients(rng, min(10_000, total - done)):
            await used.admit_request(client)
    # Small enough that a new store stays below its cap (a fresh address makes two windows).
    batch = max(10, min(5_000, total // 200, max_keys // 4))
    start, end = [], []
    for _ in range(rounds):
        start.append(
            await _cpu_us_per_admission(
                Guard(rules, LimitStore(max_keys=max_keys)), _fresh_clients(rng, batch)
            )
        )
        end.append(await _cpu_us_per_admission(used, _fresh_clients(rng, batch)))
    return statistics.median(start), statistics.median(end)


def measure_guard(total: int, max_keys: int) -> dict[str, Any]:
    progress(f"the limiter alone: a new store against one that has seen {total} addresses, in-process")
    start, end = asyncio.run(guard_cost_at_start_and_end(total, max_keys))
    return {
        "guard_cpu_us_per_request": {"start": round(start, 2), "end": round(end, 2)},
        "guard_cost_rise_percent": round(100 * (end / start - 1), 1),
    }


def _fall(first: float, last: float) -> float:
    """How far ``last`` fell below ``first``, in percent (negative: it rose)."""
    return round(100 * (1 - last / first), 1)


def print_limits_report(report: dict[str, Any]) -> None:
    rss = report["rss_mib"]
    print(f"\n{report['requests']} requests in {report['seconds']} s (Redis: {report['redis']})")
    print(f"responses by status: {report['responses']}")
    print(
        f"node RSS: {rss['ready']} MiB ready, {rss['start']} MiB after warm-up, {rss['end']} MiB at the end, "
        f"{rss['peak']} MiB peak: {report['rss_growth_mib']} MiB above ready (limit 64)"
    )
    print("requests/s by tenth of the run: " + " ".join(f"{rate:.0f}" for rate in report["rate_per_tenth"]))
    print(f"rate fall, first tenth to last: {report['rate_fall_percent']} % (limit 10)")
    cpu = report["node_cpu_us_per_request_per_tenth"]
    print("node CPU us per request by tenth: " + " ".join(f"{us:.0f}" for us in cpu))
    fall = report["node_capacity_fall_percent"]
    print(f"node capacity (1 / CPU per request) fall, first tenth to last: {fall} % (limit 10)")
    alternating = report["alternating"]
    rate, cpu = alternating["median_rate"], alternating["median_node_cpu_us_per_request"]
    print(
        f"alternating batches of {alternating['batch_requests']}, a new node (start) and the node that ran "
        f"(end): {rate['start']:.0f} and {rate['end']:.0f} requests/s, "
        f"{cpu['start']:.0f} and {cpu['end']:.0f} node CPU us per request: "
        f"rate fall {alternating['rate_fall_percent']} % (limit 10)"
    )
    guard = report["guard_cpu_us_per_request"]
    print(
        f"limiter alone, CPU us per fresh address: {guard['start']} on a new store, {guard['end']} after "
        f"{report['requests']} addresses ({report['guard_cost_rise_percent']} %)"
    )
