#!/usr/bin/env python3
"""Measure the cluster on this machine (nginx, 3 nodes, Redis); run with .venv/bin/python."""

import argparse
import asyncio
import os
import signal
import sys
import time

import httpx

from harness.cluster import LoadResult, LocalCluster, LocalNginx, run_load
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import request_body

DESCRIPTION = """Measure the cluster on this machine: nginx (deploy/nginx) in front of 3 nodes sharing one
Redis.

Prints: throughput of one node direct vs the same node through nginx (the proxy layer's overhead)
and of nginx over 3 nodes; requests failed while a node is SIGKILLed (target 0) and p99 latency
before vs during the kill; the time a SIGTERMed node takes to drain, and requests failed meanwhile.

    .venv/bin/python scripts/cluster_figures.py               # production parameters (N=65536)
    .venv/bin/python scripts/cluster_figures.py --small -d 3  # N=1024, quick
"""

SMALL = ScryptParams(salt=b"scrypt-helper-figures", n=1024, r=8, p=1, buflen=32)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def line(name: str, result: LoadResult, start: float | None = None, end: float | None = None) -> str:
    return (
        f"{name:<34} {result.throughput(start, end):8.1f} req/s"
        f"   p50 {ms(result.latency_quantile(0.5, start, end))}"
        f"   p99 {ms(result.latency_quantile(0.99, start, end))}   failed {len(result.failures)}"
        f"/{len(result.outcomes)}"
    )


async def measure(args: argparse.Namespace) -> None:
    params = SMALL if args.small else PICL_PARAMS

    def load(url: str, duration: float) -> asyncio.Task[LoadResult]:
        return asyncio.ensure_future(
            run_load(
                url,
                lambda: request_body(params, os.urandom(32)),
                concurrency=args.concurrency,
                duration=duration,
                max_requests=1_000_000,
                timeout=30,
            )
        )

    print(
        f"cluster-figures: N={params.n} r={params.r} p={params.p}, engine {args.engine}, 3 nodes x "
        f"{args.workers} worker(s), {args.concurrency} concurrent clients, "
        f"{os.cpu_count()} CPUs on this machine",
        flush=True,
    )
    cluster = LocalCluster(
        3,
        engine=args.engine,
        workers=args.workers,
        drain_seconds=args.drain_seconds,
        allowed_params=allowed_params_json(params),
        rules="",
        queue_size=args.concurrency * 2,
        max_queue_wait=10,
    )
    with cluster:
        engine = httpx.get(cluster.nodes[0].url + "/__heartbeat__").json()["details"]["node"]
        print(f"node: engine {engine['engine']}, {engine['lanes']} lanes, {engine['workers']} worker(s)\n")

        direct = await load(cluster.nodes[0].url + "/", args.duration)
        print(line("one node, direct", direct), flush=True)
        with LocalNginx([cluster.nodes[0].port]) as single:
            proxied = await load(single.url + "/", args.duration)
        print(line("one node, through nginx", proxied), flush=True)
        overhead = 1 - proxied.throughput() / direct.throughput()
        print(f"{'  proxy overhead':<34} {overhead * 100:7.1f} % of throughput", flush=True)
        spread = await load(cluster.url + "/", args.duration)
        print(line("3 nodes, through nginx", spread), flush=True)

        # SIGKILL one node under load.
        running = load(cluster.url + "/", args.duration * 2 + 2)
        await asyncio.sleep(args.duration)
        killed = time.monotonic()
        cluster.nodes[1].signal(signal.SIGKILL)
        result = await running
        print()
        print(line("kill: before (3 nodes)", result, result.began + 0.5, killed))
        print(line("kill: 2 s after the SIGKILL", result, killed, killed + 2))
        print(line("kill: after (2 nodes)", result, killed + 2, result.ended))
        print(f"{'  requests failed during the kill':<34} {len(result.failures)} (target 0)", flush=True)
        await asyncio.to_thread(cluster.restart_node, 1)

        # SIGTERM one node under load: time to drain.
        node = cluster.nodes[2]
        running = load(cluster.url + "/", args.duration * 2)
        await asyncio.sleep(args.duration)
        signalled = time.monotonic()
        node.signal(signal.SIGTERM)
        lb_down = None
        while lb_down is None and time.monotonic() - signalled < 10:
            try:
                if httpx.get(node.url + "/__lbheartbeat__", timeout=2).status_code == 503:
                    lb_down = time.monotonic() - signalled
            except httpx.TransportError:
                break
            await asyncio.sleep(0.01)
        code = await asyncio.to_thread(node.wait, 60)
        drained = time.monotonic() - signalled
        result = await running
        print()
        print(line("drain: whole run", result))
        print(
            f"{'  drain':<34} lbheartbeat 503 after {ms(lb_down or float('nan'))}, exit {code} after "
            f"{drained:.2f} s (--drain-seconds {args.drain_seconds}), {len(result.failures)} requests failed",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="N=1024 instead of the production N=65536")
    parser.add_argument(
        "-d", "--duration", type=float, default=5.0, help="seconds per measurement (default 5)"
    )
    parser.add_argument("-c", "--concurrency", type=int, default=24, help="concurrent clients (default 24)")
    parser.add_argument("--workers", type=int, default=1, help="hash workers per node (default 1)")
    parser.add_argument("--engine", default="auto", help="engine of the nodes (default auto)")
    parser.add_argument("--drain-seconds", type=float, default=2.0, help="nodes' --drain-seconds (default 2)")
    args = parser.parse_args()
    asyncio.run(measure(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
