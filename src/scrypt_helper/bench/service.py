"""The service benchmark: one engine alone, then a node on it over HTTP; its report printed and written."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
from typing import Any

from scrypt_helper.bench.engine import measure_engine
from scrypt_helper.bench.hash_load import hash_clients, percentile, send_hashes
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.bench.tls import http_get
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import Engine, ScryptParams

# The node's connection cap in this bench; the client holds as many sockets as the node, and more.
OVERLOAD_CONNECTIONS = 2048


def bench_service(engine: Engine, params: ScryptParams, args: argparse.Namespace) -> dict[str, Any]:
    """One engine alone, then a node on it over HTTP: concurrencies, overload, memory."""
    concurrencies: list[int] = args.concurrency
    allow_open_files(2 * OVERLOAD_CONNECTIONS + 256)
    progress(f"engine {engine.name} alone on 1 and {args.workers} threads")
    raw_one = measure_engine(engine, params, threads=1, seconds=args.seconds)
    raw_all = measure_engine(engine, params, threads=args.workers, seconds=args.seconds)
    report: dict[str, Any] = {
        "params": {"N": params.n, "r": params.r, "p": params.p, "buflen": params.buflen},
        "workers": args.workers,
        "engine": {
            "name": engine.name,
            "lanes": engine.lanes,
            "hashes_per_second_1_thread": round(raw_one.hashes_per_second, 2),
            f"hashes_per_second_{args.workers}_threads": round(raw_all.hashes_per_second, 2),
            "single_hash_ms": round(raw_one.single_hash_ms, 1),
        },
        "http": [],
    }
    server = LocalServer(
        engine=engine.name,
        workers=args.workers,
        allowed_params=allowed_params_json(params),
        rules="",
        log_level="WARNING",
        # Every simulated client connects from this one machine: the node's cap is the only one.
        max_connections=OVERLOAD_CONNECTIONS,
        max_connections_per_client=OVERLOAD_CONNECTIONS,
    )
    with server:
        rss_start = server.rss_bytes()
        served = 0
        for concurrency in concurrencies:
            progress(f"{engine.name} over HTTP at concurrency {concurrency} for {args.seconds:.0f} s")
            figure = asyncio.run(hash_clients(server.url, params, concurrency, args.seconds))
            served += figure.ok + figure.rejected + figure.late
            report["http"].append(figure.summary())
        node = http_get(f"{server.url}/__heartbeat__").json()["details"]["node"]
        # Enough clients to keep every worker and queue slot busy, and 32 more that meet a full queue;
        # where the queue is longer than the node takes connections (fast tiny hashes), the node's
        # connection cap refuses the 32 instead.
        overload = min(node["queue_size"] + node["workers"] * node["lanes"], OVERLOAD_CONNECTIONS) + 32
        progress(f"overload: {overload} clients against queue {node['queue_size']}")
        figure = asyncio.run(hash_clients(server.url, params, overload, args.seconds))
        served += figure.ok + figure.rejected + figure.late
        report["overload"] = figure.summary()
        if served < args.rss_requests:
            progress(f"topping up to {args.rss_requests} requests for the memory figure")
            asyncio.run(send_hashes(server.url, params, args.rss_requests - served, concurrency=16))
            served = args.rss_requests
        report["rss"] = {
            "requests": served,
            "start_mib": rss_start >> 20,
            "end_mib": server.rss_bytes() >> 20,
        }
    refusals = server_side_ms(server.logs(), reason="queue_full")
    report["overload"]["server_503_p50_ms"] = percentile(refusals, 50)
    report["overload"]["server_503_p99_ms"] = percentile(refusals, 99)
    return report


def allow_open_files(count: int) -> None:
    """Raise this process's open-file limit (and so its server's) towards ``count``, as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def server_side_ms(logs: str, *, reason: str) -> list[float]:
    """The node's own timing (request.summary ``t``, ms) of every refusal for this reason."""
    times = []
    for line in logs.splitlines():
        if '"request.summary"' not in line:
            continue
        fields = json.loads(line)["Fields"]
        if fields.get("reason") == reason:
            times.append(float(fields["t"]))
    return times


def print_comparison(reports: list[dict[str, Any]]) -> None:
    """Each engine's HTTP throughput and latency as a ratio to the last engine's, same run."""
    base = reports[-1]
    base_rows = {row["concurrency"]: row for row in base["http"]}
    print(f"\ncompared with {base['engine']['name']} in the same run")
    print(f"{'engine':<18}{'clients':>8}{'ok/s':>9}{'x base':>8}{'p50 ms':>9}{'base p50':>10}")
    for report in reports[:-1]:
        for row in report["http"]:
            other = base_rows.get(row["concurrency"])
            if other is None:
                continue
            ratio = row["ok_per_second"] / other["ok_per_second"] if other["ok_per_second"] else float("nan")
            print(
                f"{report['engine']['name']:<18}{row['concurrency']:>8}{row['ok_per_second']:>9.1f}"
                f"{ratio:>8.2f}{row['p50_ms']:>9.1f}{other['p50_ms']:>10.1f}"
            )


def print_report(report: dict[str, Any], workers: int) -> None:
    """The engine's raw speed, then one row per HTTP concurrency and the overload, then memory."""
    engine = report["engine"]
    raw = engine[f"hashes_per_second_{workers}_threads"]
    print(f"\nengine {engine['name']} ({engine['lanes']} lanes), N={report['params']['N']}")
    print(f"  raw: {engine['hashes_per_second_1_thread']:.1f} hashes/s on 1 thread, {raw:.1f} on {workers}")
    print(f"  one hash: {engine['single_hash_ms']:.1f} ms")
    print(
        f"{'clients':>8}{'ok/s':>9}{'vs raw':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'503s':>7}{'503 p99 ms':>12}{'late 503':>10}{'failed':>8}"
    )
    for row in [*report["http"], report["overload"]]:
        print(
            f"{row['concurrency']:>8}{row['ok_per_second']:>9.1f}{row['ok_per_second'] / raw:>8.0%}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['rejected_503']:>7}"
            f"{row['reject_p99_ms']:>12.1f}{row['late_503']:>10}{row['failed']:>8}"
        )
    overload = report["overload"]
    print(
        f"  queue-full 503s as the node timed them: p50 {overload['server_503_p50_ms']:.0f} ms, "
        f"p99 {overload['server_503_p99_ms']:.0f} ms"
    )
    rss = report["rss"]
    print(f"  RSS: {rss['start_mib']} MiB at start, {rss['end_mib']} MiB after {rss['requests']} requests")
