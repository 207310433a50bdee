"""``bench`` and ``capacity``: measure the engine and the service, and size a fleet from the figures.

Each ``bench`` mode is a command of its own with only its flags; ``bench`` alone is ``bench service``.
The bench package (httpx, the local server, matplotlib) is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from scrypt_helper.bench.engine import TINY_PARAMS as TINY
from scrypt_helper.cli.arguments import (
    Commands,
    UsageError,
    comma_list,
    engine_name,
    one_of,
    positive,
    readable_file,
)
from scrypt_helper.core.config import allowed_params_json, default_workers
from scrypt_helper.engines import ScryptParams, select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS

MODES = {
    "service": "the engine alone, then the service over HTTP at several concurrencies and under overload",
    "abuse": "refusals under a flood, and ban propagation through Redis",
    "limits": "memory and request rate under requests from a million distinct addresses",
    "parser": "hostile bodies' parse cost, and health checks while 20 are in flight",
    "overload": "goodput under open-loop overload, refusals against a bare app, a paced flood beside "
    "an honest client, a batching window against none, each figure beside its criterion",
    "batching": "a batching window against none, at 1 to 64 clients",
    "flood": "a paced flood beside an honest client on each node shape (limits in memory; several "
    "processes sharing a local Redis, which is killed under the flood), each figure beside its criterion",
}
DEFAULT_MODE = "service"
# The parts of ``bench overload``, in the order it runs them (bench.overload).
OVERLOAD_PARTS = ("open-loop", "refusals", "flood", "batching")


def register(commands: Commands) -> None:
    """Add ``bench`` with one command per mode, and ``capacity``."""
    bench = commands.add_parser(
        "bench",
        help="measure the engine and the service over HTTP",
        description="Measure the engine and the service; 'bench' alone is 'bench service'.",
    )
    modes = bench.add_subparsers(title="modes", dest="mode", metavar="MODE", required=True)
    for mode, text in MODES.items():
        parser = modes.add_parser(mode, help=text, description=text[0].upper() + text[1:] + ".")
        MODE_FLAGS[mode](parser)
        parser.add_argument(
            "--out", type=Path, default=Path("bench-results"), help="folder for the JSON report"
        )
        parser.set_defaults(handler=cmd_bench)

    capacity = commands.add_parser("capacity", help="machines and monthly cost for a peak load")
    add_capacity_arguments(capacity)
    capacity.set_defaults(handler=cmd_capacity)


def with_default_mode(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``service`` after a ``bench`` followed by nothing or a flag (``bench --tiny``)."""
    argv = list(argv)
    follows = argv[1] if len(argv) > 1 else "--"
    if argv[:1] == ["bench"] and follows.startswith("-") and follows not in ("-h", "--help"):
        argv.insert(1, DEFAULT_MODE)
    return argv


def add_engine_flag(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """``--engine``: one engine, or with ``several`` a comma-separated list to compare."""
    parser.add_argument(
        "--engine",
        type=comma_list(engine_name) if several else engine_name,
        default="auto",
        help="engine to measure"
        + (", or comma-separated engines to compare in one run, the last as the base" if several else ""),
    )


def add_common_flags(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """How long to measure, at which parameters, and (with ``workers``) on how many worker threads."""
    if workers:
        parser.add_argument(
            "--workers", type=positive(int), default=default_workers(), help="worker threads (default: cores)"
        )
    parser.add_argument("--seconds", type=positive(float), default=10.0, help="seconds per measurement")
    parser.add_argument("--tiny", action="store_true", help="N=1024 instead of the production parameters")


def add_service_flags(parser: argparse.ArgumentParser) -> None:
    """``bench service``: engines to compare, client concurrencies, the memory figure's requests."""
    add_engine_flag(parser, several=True)
    add_common_flags(parser)
    parser.add_argument(
        "--concurrency",
        type=comma_list(positive(int)),
        default="1,2,16,64",
        help="comma-separated client concurrencies",
    )
    parser.add_argument(
        "--rss-requests", type=positive(int), default=1000, help="requests served before reading RSS"
    )


def add_abuse_flags(parser: argparse.ArgumentParser) -> None:
    """``bench abuse``: the engine, the duration, the flood's connections."""
    add_engine_flag(parser)
    add_common_flags(parser, workers=False)
    add_flood_flag(parser)


def add_flood_flag(parser: argparse.ArgumentParser) -> None:
    """``--flood-connections``."""
    parser.add_argument("--flood-connections", type=positive(int), default=64, help="flooding connections")


def add_limits_flags(parser: argparse.ArgumentParser) -> None:
    """``bench limits``: how many fresh addresses, the node's cap, Redis down."""
    parser.add_argument(
        "--requests", type=positive(int), default=1_000_000, help="requests, each from a fresh address"
    )
    parser.add_argument(
        "--max-tracked-keys", type=positive(int), help="the node's cap (default: the node's own default)"
    )
    parser.add_argument(
        "--redis-down", action="store_true", help="configure an unreachable Redis (the fall-back)"
    )
    add_flood_flag(parser)


def add_parser_flags(parser: argparse.ArgumentParser) -> None:
    """``bench parser``: the engine and the duration."""
    add_engine_flag(parser)
    parser.add_argument("--seconds", type=positive(float), default=10.0, help="seconds per measurement")


def add_overload_flags(parser: argparse.ArgumentParser) -> None:
    """``bench overload``: the engine, the duration, the nodes to compare."""
    add_engine_flag(parser)
    add_common_flags(parser)
    add_node_flag(
        parser, "(e.g. processes=2,workers=2); repeat to compare nodes in one run (default: --workers)"
    )
    add_batch_window_flag(parser)
    parser.add_argument(
        "--parts",
        type=comma_list(one_of(OVERLOAD_PARTS)),
        default=",".join(OVERLOAD_PARTS),
        help="comma-separated parts to run: open-loop (capacity, then 2x, 5x and 20x it), refusals, "
        "flood, batching",
    )


def add_flood_shape_flags(parser: argparse.ArgumentParser) -> None:
    """``bench flood``: the engine, the duration, the node shapes to compare."""
    add_engine_flag(parser)
    add_common_flags(parser, workers=False)
    add_node_flag(
        parser,
        "; redis_url=local starts a redis-server for it (default: workers=2, then "
        "processes=2,workers=2,redis_url=local); the first is the reference for CPU per refusal",
    )


def add_node_flag(parser: argparse.ArgumentParser, more: str) -> None:
    """``--node``, repeatable: a node's serve flags; ``more`` finishes its help."""
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="FLAGS",
        help="serve flags of a node to measure, as name=value pairs separated by commas " + more,
    )


def add_batching_flags(parser: argparse.ArgumentParser) -> None:
    """``bench batching``: the engine, the duration, the window to measure."""
    add_engine_flag(parser)
    add_common_flags(parser)
    add_batch_window_flag(parser)


def add_batch_window_flag(parser: argparse.ArgumentParser) -> None:
    """``--batch-window``: the window that ``batching`` (and ``overload``'s batching part) measures."""
    parser.add_argument(
        "--batch-window",
        type=positive(float),
        default=0.003,
        help="the batching window to measure against none, in seconds",
    )


def add_capacity_arguments(parser: argparse.ArgumentParser) -> None:
    """The peak loads, the measured speed (given or from a report), the instance types and headroom."""
    parser.add_argument(
        "--peak",
        type=comma_list(positive(float)),
        default="1000,100000",
        help="comma-separated peak logins per second",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ops-per-core", type=positive(float), help="measured hashes per second per core")
    source.add_argument(
        "--from-report", type=readable_file, help="a bench JSON report to take ops per core from"
    )
    parser.add_argument("--instances", type=readable_file, help="CSV of name,vcpus,memory_gib,usd_per_hour")
    parser.add_argument(
        "--utilization", type=fraction, default=0.8, help="busiest a node may run, above 0 and at most 1"
    )
    parser.add_argument("--lanes", type=positive(int), default=8, help="engine lanes, for the memory check")


def fraction(text: str) -> float:
    """An argparse type: a number above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {text!r}")
    return value


def bench_params(args: argparse.Namespace) -> tuple[ScryptParams, str]:
    """The parameters to measure at, and the suffix of the report's name for them."""
    return (TINY, "-tiny") if args.tiny else (PICL_PARAMS, "")


def cmd_bench(args: argparse.Namespace) -> int:
    """Make sure the report's folder can be made, then run the mode."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"argument --out: cannot make {str(args.out)!r}: {exc.strerror}") from None
    return MODE_HANDLERS[args.mode](args)


def cmd_service(args: argparse.Namespace) -> int:
    """Each engine alone and behind the service; its tables, JSON report and plots; then a comparison."""
    from scrypt_helper.bench.plots import draw_plots  # matplotlib: only the bench draws
    from scrypt_helper.bench.report import write_report
    from scrypt_helper.bench.service import bench_service, print_comparison, print_report

    params, suffix = bench_params(args)
    reports = []
    for name in args.engine:
        report = bench_service(select_engine(name), params, args)
        print_report(report, args.workers)
        stem = f"bench-{report['engine']['name']}{suffix}"
        write_report(report, args.out, stem)
        for path in draw_plots(
            report, report["engine"][f"hashes_per_second_{args.workers}_threads"], args.out, stem
        ):
            print(f"wrote {path}")
        reports.append(report)
    if len(reports) > 1:
        print_comparison(reports)
    return 0


def cmd_abuse(args: argparse.Namespace) -> int:
    """Refusals under a flood and ban propagation; the JSON report."""
    from scrypt_helper.bench.abuse import run_abuse_bench
    from scrypt_helper.bench.report import write_report

    params, suffix = bench_params(args)
    args.engine = select_engine(args.engine).name
    report = run_abuse_bench(params, allowed_params_json(params), args)
    write_report(report, args.out, f"bench-abuse-{args.engine}{suffix}")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    """A node's memory and rate under fresh addresses; the table and the JSON report."""
    from scrypt_helper.bench.limits import measure_limits, print_limits_report
    from scrypt_helper.bench.report import write_report

    report = measure_limits(allowed_params_json(TINY), args)
    print_limits_report(report)
    write_report(report, args.out, "bench-limits" + ("-redis-down" if args.redis_down else ""))
    return 0


def cmd_parser(args: argparse.Namespace) -> int:
    """Hostile bodies' parse cost; the JSON report."""
    from scrypt_helper.bench.parser import run_parser_bench
    from scrypt_helper.bench.report import write_report

    write_report(run_parser_bench(args), args.out, "bench-parser")
    return 0


def cmd_overload(args: argparse.Namespace) -> int:
    """Goodput and refusals under overload; the JSON report and its plots."""
    from scrypt_helper.bench.overload import run_overload_bench
    from scrypt_helper.bench.plots import draw_overload_plots
    from scrypt_helper.bench.report import write_report

    params, suffix = bench_params(args)
    engine = select_engine(args.engine)
    report = run_overload_bench(params, engine.name, args)
    stem = f"bench-overload-{engine.name}{suffix}"
    write_report(report, args.out, stem)
    for path in draw_overload_plots(report, args.out, stem):
        print(f"wrote {path}")
    return 0


def cmd_batching(args: argparse.Namespace) -> int:
    """A batching window against none; the table and the JSON report."""
    from scrypt_helper.bench.batching import measure_batching, print_batching_report
    from scrypt_helper.bench.report import write_report

    params, suffix = bench_params(args)
    engine = select_engine(args.engine)
    report = measure_batching(params, engine.name, args)
    print_batching_report(report)
    write_report(report, args.out, f"bench-batching-{engine.name}{suffix}")
    return 0


def cmd_flood(args: argparse.Namespace) -> int:
    """The flood beside an honest client on each node shape; the table and the JSON report."""
    from scrypt_helper.bench.flood import run_flood_bench
    from scrypt_helper.bench.report import write_report

    params, suffix = bench_params(args)
    engine = select_engine(args.engine)
    write_report(run_flood_bench(params, engine.name, args), args.out, f"bench-flood-{engine.name}{suffix}")
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    """Print the machines and monthly cost each peak load needs; 2 for an unreadable report or table."""
    from scrypt_helper.bench.capacity import capacity_report, load_instances, ops_per_core_from_report

    ops = args.ops_per_core
    if ops is None:
        ops = read_input("--from-report", ops_per_core_from_report, args.from_report)
    instances = read_input("--instances", load_instances, args.instances)
    print(
        capacity_report(args.peak, ops, instances=instances, utilization=args.utilization, lanes=args.lanes)
    )
    return 0


def read_input(flag: str, read: Callable[[Path], object], path: Path | None) -> object:
    """``read(path)``, or a UsageError naming the flag when the file is not what it should be."""
    try:
        return read(path)
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise UsageError(f"{flag}: {path} is not a usable file ({type(exc).__name__}: {exc})") from None


MODE_FLAGS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "service": add_service_flags,
    "abuse": add_abuse_flags,
    "limits": add_limits_flags,
    "parser": add_parser_flags,
    "overload": add_overload_flags,
    "batching": add_batching_flags,
    "flood": add_flood_shape_flags,
}
MODE_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "service": cmd_service,
    "abuse": cmd_abuse,
    "limits": cmd_limits,
    "parser": cmd_parser,
    "overload": cmd_overload,
    "batching": cmd_batching,
    "flood": cmd_flood,
}
