"""``scrypt-helper bench abuse``: refusals a node sustains under a flood, and ban propagation."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from scrypt_helper.bench.flood import Flood, prepared_request
from scrypt_helper.bench.http import closed_loop, random_body
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.engines import ScryptParams

FLOODER = {"X-Forwarded-For": "203.0.113.66"}


def normal_users() -> Callable[[], dict[str, str]]:
    """Each request from another address of 10.0.0.0/8, and each of 65,536 requests in a row from
    another /24: many users, each far below the limits, their networks too (the built-in rules
    count ``ip_prefix`` /24s)."""
    addresses = itertools.count(1)

    def headers() -> dict[str, str]:
        n = next(addresses)
        return {"X-Forwarded-For": f"10.{n >> 8 & 255}.{n & 255}.{1 + (n >> 16) % 254}"}

    return headers


def measure_flood(params: ScryptParams, allowed: str, args: argparse.Namespace) -> dict[str, Any]:
    """A normal client's latency alone, then beside a client flooding past its limit."""
    rules = "scrypt : ip : 30 : 60s : 600s : block"
    with LocalServer(
        engine=args.engine, allowed_params=allowed, rules=rules, trusted_proxies="1", log_level="WARNING"
    ) as node:
        progress(f"normal client alone for {args.seconds:.0f} s")
        alone = asyncio.run(closed_loop(node.url, params, 1, args.seconds, headers=normal_users()))
        request = prepared_request(node.host, node.port, json.dumps(random_body(params)).encode(), FLOODER)
        progress(f"flood from one address ({args.flood_connections} connections) beside the normal client")
        flood = Flood(node.host, node.port, request, connections=args.flood_connections, seconds=args.seconds)
        flood.start()
        time.sleep(0.5)  # let the flooder connect and pass its 30 allowed hashes
        during = asyncio.run(closed_loop(node.url, params, 1, args.seconds - 1.0, headers=normal_users()))
        statuses = flood.result()
    return {
        "flood_responses": {str(status): count for status, count in sorted(statuses.items())},
        "flood_refusals_per_second": round(statuses.get(429, 0) / args.seconds, 1),
        "normal_alone": alone.summary(),
        "normal_during_flood": during.summary(),
    }


def measure_ban_propagation(params: ScryptParams, allowed: str, engine: str) -> dict[str, Any]:
    """Time from node A banning an address to node B refusing it, through Redis."""
    rules = "request : ip : 5 : 60s : 60s : ban"
    flags = {"engine": engine, "allowed_params": allowed, "rules": rules, "trusted_proxies": "1"}
    samples = []
    with (
        LocalRedis() as redis,
        LocalServer(redis_url=redis.url, log_level="WARNING", **flags) as a,
        LocalServer(redis_url=redis.url, log_level="WARNING", **flags) as b,
        httpx.Client(timeout=10) as client,
    ):
        for trial in range(20):
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
    report["ban_propagation"] = measure_ban_propagation(params, allowed, args.engine)
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
