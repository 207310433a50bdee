"""``bench`` and ``capacity``: measure the engine and the service, and size a fleet from the figures.

The bench package (httpx, the local server, matplotlib) is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scrypt_helper.cli.arguments import Commands
from scrypt_helper.config import allowed_params_json, default_workers
from scrypt_helper.engines import select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS


def register(commands: Commands) -> None:
    """Add ``bench`` and ``capacity``."""
    bench = commands.add_parser("bench", help="measure the engine and the service over HTTP")
    add_bench_arguments(bench)
    bench.set_defaults(handler=cmd_bench)

    capacity = commands.add_parser("capacity", help="machines and monthly cost for a peak load")
    add_capacity_arguments(capacity)
    capacity.set_defaults(handler=cmd_capacity)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario, the engines to measure, and how long and how hard to measure them."""
    parser.add_argument(
        "scenario",
        nargs="?",
        choices=["service", "abuse", "limits", "parser", "overload", "batching"],
        default="service",
        help="service: engine and HTTP throughput (default); abuse: refusals under a flood, ban propagation; "
        "limits: memory and request rate under requests from a million distinct addresses; "
        "parser: hostile bodies' parse cost, health checks while 20 are in flight; "
        "overload: goodput under open-loop overload, refusals against a bare app, a paced flood beside "
        "an honest client, a batching window against none, each figure beside its criterion; "
        "batching: that window comparison alone, at 1 to 64 clients",
    )
    parser.add_argument(
        "--engine",
        default="auto",
        help="engine to measure, or comma-separated engines to compare in one run, the last as the base",
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="worker threads (default: cores)"
    )
    parser.add_argument(
        "--concurrency", default="1,2,16,64", help="comma-separated client concurrencies (default: 1,2,16,64)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default: 10)")
    parser.add_argument("--rss-requests", type=int, default=1000, help="requests served before reading RSS")
    parser.add_argument("--tiny", action="store_true", help="N=1024 instead of the production parameters")
    parser.add_argument("--flood-connections", type=int, default=64, help="abuse: flooding connections")
    parser.add_argument(
        "--requests", type=int, default=1_000_000, help="limits: requests, each from a fresh address"
    )
    parser.add_argument("--max-tracked-keys", type=int, help="limits: the node's cap (default: its default)")
    parser.add_argument(
        "--redis-down", action="store_true", help="limits: configure an unreachable Redis (the fall-back)"
    )
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="FLAGS",
        help="overload: serve flags of a node to measure, as name=value pairs separated by commas "
        "(e.g. processes=2,workers=2); repeat to compare nodes in one run (default: --workers)",
    )
    parser.add_argument(
        "--batch-window",
        type=float,
        default=0.003,
        help="batching: the window to measure against none, in seconds (default: 0.003)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for the JSON report")


def add_capacity_arguments(parser: argparse.ArgumentParser) -> None:
    """The peak loads, the measured speed (given or from a report), the instance types and headroom."""
    parser.add_argument("--peak", default="1000,100000", help="comma-separated peak logins per second")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ops-per-core", type=float, help="measured hashes per second per core")
    source.add_argument("--from-report", type=Path, help="a bench JSON report to take ops per core from")
    parser.add_argument("--instances", type=Path, help="CSV of name,vcpus,memory_gib,usd_per_hour")
    parser.add_argument("--utilization", type=float, default=0.8, help="busiest a node may run (default 0.8)")
    parser.add_argument("--lanes", type=int, default=8, help="engine lanes, for the memory check (default 8)")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the scenario, print its tables and write its JSON report (and the service's plots)."""
    from scrypt_helper.bench.engine import TINY_PARAMS
    from scrypt_helper.bench.report import write_report
    from scrypt_helper.bench.service import bench_service, print_comparison, print_report

    params = TINY_PARAMS if args.tiny else PICL_PARAMS
    suffix = "-tiny" if args.tiny else ""
    names = [name.strip() for name in args.engine.split(",") if name.strip()]
    if args.scenario == "limits":
        from scrypt_helper.bench.limits import measure_limits, print_limits_report

        report = measure_limits(allowed_params_json(TINY_PARAMS), args)
        print_limits_report(report)
        write_report(report, args.out, "bench-limits" + ("-redis-down" if args.redis_down else ""))
        return 0
    if args.scenario == "parser":
        from scrypt_helper.bench.parser import run_parser_bench

        write_report(run_parser_bench(args), args.out, "bench-parser")
        return 0
    if args.scenario == "overload":
        from scrypt_helper.bench.overload import run_overload_bench

        engine = select_engine(names[0])
        report = run_overload_bench(params, engine.name, args)
        stem = f"bench-overload-{engine.name}{suffix}"
        write_report(report, args.out, stem)
        from scrypt_helper.bench.plots import draw_overload_plots

        for path in draw_overload_plots(report, args.out, stem):
            print(f"wrote {path}")
        return 0
    if args.scenario == "batching":
        from scrypt_helper.bench.batching import measure_batching, print_batching_report

        engine = select_engine(names[0])
        report = measure_batching(params, engine.name, args)
        print_batching_report(report)
        write_report(report, args.out, f"bench-batching-{engine.name}{suffix}")
        return 0
    if args.scenario == "abuse":
        from scrypt_helper.bench.abuse import run_abuse_bench

        engine = select_engine(names[0])
        args.engine = engine.name
        report = run_abuse_bench(params, allowed_params_json(params), args)
        write_report(report, args.out, f"bench-abuse-{engine.name}{suffix}")
        return 0
    reports = []
    for name in names:
        report = bench_service(select_engine(name), params, args)
        print_report(report, args.workers)
        stem = f"bench-{report['engine']['name']}{suffix}"
        write_report(report, args.out, stem)
        from scrypt_helper.bench.plots import draw_plots  # matplotlib: only the bench draws

        for path in draw_plots(
            report, report["engine"][f"hashes_per_second_{args.workers}_threads"], args.out, stem
        ):
            print(f"wrote {path}")
        reports.append(report)
    if len(reports) > 1:
        print_comparison(reports)
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    """Print the machines and monthly cost each peak load needs."""
    from scrypt_helper.bench.capacity import capacity_report, load_instances, ops_per_core_from_report

    ops = args.ops_per_core if args.ops_per_core else ops_per_core_from_report(args.from_report)
    peaks = [float(peak) for peak in args.peak.split(",")]
    print(
        capacity_report(
            peaks,
            ops,
            instances=load_instances(args.instances),
            utilization=args.utilization,
            lanes=args.lanes,
        )
    )
    return 0
