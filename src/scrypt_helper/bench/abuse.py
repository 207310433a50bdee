"""``scrypt-helper bench abuse``: refusals a node sustains under a flood, and ban propagation."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from scrypt_helper.bench.hash_load import hash_clients
from scrypt_helper.bench.load import ClosedLoop, Requests
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.bench.tls import shared_tls
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import request_body

FLOODER = (("X-Forwarded-For", "203.0.113.66"),)


def flood_phases(seconds: float) -> tuple[float, float]:
    """The flood lasts ``seconds``: the seconds it runs before the normal client starts (for its
    connections and its allowed hashes), and the normal client's seconds, which end that long
    before the flood does."""
    settle = min(0.5, seconds / 4)
    return settle, seconds - 2 * settle


def measure_flood(params: ScryptParams, allowed: str, args: argparse.Namespace) -> dict[str, Any]:
    """A normal client's latency alone, then beside a client flooding past its limit."""
    rules = "scrypt : ip : 30 : 60s : 600s : block"
    with LocalServer(
        engine=args.engine, allowed_params=allowed, rules=rules, trusted_proxies="1", log_level="WARNING"
    ) as node:
        progress(f"normal client alone for {args.seconds:.0f} s")
        alone = asyncio.run(hash_clients(node.url, params, 1, args.seconds, clients="users"))
        body = json.dumps(request_body(params, bytes(32))).encode()
        flooder = Requests(node.host, node.port, body, headers=FLOODER)
        progress(f"flood from one address ({args.flood_connections} connections) beside the normal client")
        settle, beside = flood_phases(args.seconds)
        flood = ClosedLoop(flooder, connections=args.flood_connections, seconds=args.seconds).start()
        time.sleep(settle)  # let the flooder connect and pass its 30 allowed hashes
        during = asyncio.run(hash_clients(node.url, params, 1, beside, clients="users"))
        statuses = flood.result().statuses
    return {
        "flood_responses": {str(status): count for status, count in sorted(statuses.items())},
        "flood_refusals_per_second": round(statuses.get(429, 0) / args.seconds, 1),
        "normal_alone": alone.summary(),
        "normal_during_flood": during.summary(),
    }


BAN_TRIALS = 20
BAN_TRIALS_TINY = 5  # each busy-polls node B for up to a sync interval (0.1 s)


def measure_ban_propagation(params: ScryptParams, allowed: str, engine: str, trials: int) -> dict[str, Any]:
    """Time from node A banning an address to node B refusing it, through Redis, ``trials`` times."""
    rules = "request : ip : 5 : 60s : 60s : ban"
    flags = {"engine": engine, "allowed_params": allowed, "rules": rules, "trusted_proxies": "1"}
    samples = []
    with (
        LocalRedis() as redis,
        LocalServer(redis_url=redis.url, log_level="WARNING", **flags) as a,
        LocalServer(redis_url=redis.url, log_level="WARNING", **flags) as b,
        httpx.Client(timeout=10, verify=shared_tls()) as client,
    ):
        for trial in range(trials):
            offender = {"X-Forwarded-For": f"203.0.113.{trial + 1}"}
            while client.get(a.url + "/", headers=offender).status_code != 429:
                pass
            banned_at = time.perf_counter()
            while client.get(b.url + "/", headers=offender).status_code != 429:
                pass
            samples.append((time.perf_counter() - banned_at) * 1000)
    samples.sort()
    return {
        "trials": len(samples),
        "median_ms": round(samples[len(samples) // 2], 2),
        "max_ms": round(samples[-1], 2),
    }


def run_abuse_bench(params: ScryptParams, allowed: str, args: argparse.Namespace) -> dict[str, Any]:
    report = {"flood": measure_flood(params, allowed, args)}
    progress("ban propagation between two nodes through Redis")
    trials = BAN_TRIALS_TINY if args.tiny else BAN_TRIALS
    report["ban_propagation"] = measure_ban_propagation(params, allowed, args.engine, trials)
    print_abuse_report(report)
    return report


def print_abuse_report(report: dict[str, Any]) -> None:
    flood = report["flood"]
    alone, during = flood["normal_alone"], flood["normal_during_flood"]
    print(f"\nflood responses by status: {flood['flood_responses']}")
    print(f"refusals sustained: {flood['flood_refusals_per_second']:.0f}/s")
    print(f"{'normal client':<22}{'ok/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for label, row in (("alone", alone), ("during the flood", during)):
        print(
            f"{label:<22}{row['ok_per_second']:>8.1f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['failed']:>8}"
        )
    ban = report["ban_propagation"]
    print(f"ban reaches a second node through Redis: median {ban['median_ms']} ms, max {ban['max_ms']} ms")
