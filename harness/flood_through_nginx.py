"""The paced flood of ``bench flood`` through the shipped nginx, in front of two nodes of the deployed
shape (two processes, two workers) sharing one Redis: the honest client's share of its rate alone,
and the cores nginx, the nodes and Redis used beside the flood. A figure to report, not a criterion:
nginx, the nodes, Redis and the generator all share this machine's cores. What nginx answered
itself, when it had taken every node out (``no live upstreams``), is counted and reported too.

    python -m harness.flood_through_nginx [--seconds 10] [--engine native] [--tiny] [--out DIR]

The nodes trust two proxy hops, as behind a load balancer and nginx: the flood's fresh address
comes in ``X-Forwarded-For`` as a load balancer would put it there, and nginx appends its own peer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.cluster import LocalCluster
from harness.measurement import measurement_arguments, params_and_engine, report_name
from scrypt_helper.bench.criteria import Figure, table
from scrypt_helper.bench.honest import FLOOD_RATE, flood_summary, honest_load, start_flood
from scrypt_helper.bench.report import run_header, write_report
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.observability.process_usage import tree_cpu_seconds

NODES = 2
NODE_FLAGS = {"processes": 2, "workers": 2, "trusted_proxies": 2, "max_connections": 4096}


def cpu_seconds(cluster: LocalCluster) -> dict[str, float]:
    """CPU seconds so far of nginx, every node (and apart their event loops), and Redis."""
    assert cluster.nginx is not None
    assert cluster.nginx.process is not None
    assert cluster.redis is not None
    assert cluster.redis.process is not None
    pids = [node.process.pid for node in cluster.nodes if node.process is not None]
    return {
        "nginx": tree_cpu_seconds(cluster.nginx.process.pid),
        "nodes": sum(tree_cpu_seconds(pid) for pid in pids),
        "node_loops": sum(tree_cpu_seconds(pid, main_threads=True) for pid in pids),
        "redis": tree_cpu_seconds(cluster.redis.process.pid),
    }


def measure(params: ScryptParams, engine: str, seconds: float) -> dict[str, Any]:
    """The honest client through nginx alone, then beside the flood; the cores each part used."""
    flags = {**NODE_FLAGS, "engine": engine, "allowed_params": allowed_params_json(params)}
    with LocalCluster(NODES, redis=True, **flags) as cluster:
        assert cluster.nginx is not None
        host, port = "127.0.0.1", cluster.nginx.port
        alone = asyncio.run(honest_load(host, port, params, seconds))
        flood = start_flood(host, port, params, seconds)
        before, started = cpu_seconds(cluster), time.perf_counter()
        during = asyncio.run(honest_load(host, port, params, seconds))
        elapsed = time.perf_counter() - started
        cores = {
            name: round((used - before[name]) / elapsed, 2) for name, used in cpu_seconds(cluster).items()
        }
        result = flood.result()
        # What nginx answered itself with every node taken out (none while max_fails=0 holds).
        no_live_upstreams = cluster.nginx.error_log().count("no live upstreams")
    return {
        **run_header(params, engine),
        "nodes": NODES,
        "node_flags": NODE_FLAGS,
        "alone": alone,
        "during_flood": during,
        "cores_during_flood": cores,
        "flood": flood_summary(result),
        "nginx_no_live_upstreams": no_live_upstreams,
    }


def figures(report: dict[str, Any]) -> list[Figure]:
    alone, during, cores = report["alone"], report["during_flood"], report["cores_during_flood"]
    generator = report["flood"]["generator_cores"]
    share = 100 * during["ok_per_second"] / alone["ok_per_second"] if alone["ok_per_second"] else float("nan")
    return [
        Figure(
            "honest client's rate beside the flood, through nginx",
            share,
            "%",
            None,
            generator,
            f"{during['ok_per_second']:.1f}/s, alone {alone['ok_per_second']:.1f}/s",
        ),
        Figure(
            "__lbheartbeat__ p99 beside the flood",
            during["heartbeat_p99_ms"],
            "ms",
            None,
            generator,
            f"{during['heartbeats_failed']} of {during['heartbeats'] + during['heartbeats_failed']} not 200",
        ),
        Figure(
            "honest client's 503s beside the flood",
            during["rejected_503"] + during["late_503"],
            "",
            None,
            generator,
            f"alone {alone['rejected_503'] + alone['late_503']}",
        ),
        Figure(
            "nginx",
            cores["nginx"],
            "cores",
            None,
            generator,
            f"{report['nginx_no_live_upstreams']} answers with every node taken out (no live upstreams); "
            f"flood answered {report['flood']['statuses']}",
        ),
        Figure(
            f"{report['nodes']} nodes",
            cores["nodes"],
            "cores",
            None,
            generator,
            f"loops {cores['node_loops']}",
        ),
        Figure("Redis", cores["redis"], "cores", None, generator),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = measurement_arguments("python -m harness.flood_through_nginx", __doc__)
    args = parser.parse_args(argv)
    params, engine = params_and_engine(args)
    report = measure(params, engine, args.seconds)
    print(
        f"flood of {FLOOD_RATE:.0f}/s fresh /56s through nginx to {report['nodes']} nodes "
        f"({', '.join(f'{k}={v}' for k, v in NODE_FLAGS.items())}) sharing Redis; {report['cpu']}, "
        f"engine {engine}, N={params.n}; nginx, nodes, Redis and generator on the same cores"
    )
    print(table(figures(report)))
    write_report(report, args.out, report_name("flood-through-nginx", engine, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
