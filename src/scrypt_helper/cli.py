"""The ``scrypt-helper`` command: serve, hash, engines, bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scrypt_helper import __version__
from scrypt_helper.cli_client import add_client_commands, cmd_client, cmd_stretch
from scrypt_helper.config import Settings
from scrypt_helper.engines import EngineUnavailable, ScryptParams, SelfTestFailed, select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, named like its environment variable (``--queue-size``)."""
    for name, field in Settings.model_fields.items():
        env = f"SCRYPT_HELPER_{name.upper()}"
        parser.add_argument(_flag(name), dest=name, default=None, help=f"{field.description} [env {env}]")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given on the command line."""
    given: dict[str, Any] = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None
    }
    return Settings(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrypt-helper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scrypt-helper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web service")
    add_settings_flags(serve)

    hash_ = commands.add_parser("hash", help="compute one scrypt locally and print its hex output")
    add_hash_arguments(hash_)
    hash_.add_argument("--engine", default="auto", help="engine name or auto")

    engines = commands.add_parser("engines", help="list the engines that run here, with a quick speed")
    engines.add_argument(
        "--seconds", type=float, default=1.0, help="measuring time per engine and thread count"
    )
    engines.add_argument("--threads", default="1", help="comma-separated thread counts (default: 1)")
    engines.add_argument("--tiny", action="store_true", help="N=1024 instead of the production parameters")

    bench = commands.add_parser("bench", help="measure the engine and the service over HTTP")
    from scrypt_helper.bench.cli import add_bench_arguments

    add_bench_arguments(bench)

    capacity = commands.add_parser("capacity", help="machines and monthly cost for a peak load")
    capacity.add_argument("--peak", default="1000,100000", help="comma-separated peak logins per second")
    source = capacity.add_mutually_exclusive_group(required=True)
    source.add_argument("--ops-per-core", type=float, help="measured hashes per second per core")
    source.add_argument("--from-report", type=Path, help="a bench JSON report to take ops per core from")
    capacity.add_argument("--instances", type=Path, help="CSV of name,vcpus,memory_gib,usd_per_hour")
    capacity.add_argument(
        "--utilization", type=float, default=0.8, help="busiest a node may run (default 0.8)"
    )
    capacity.add_argument(
        "--lanes", type=int, default=8, help="engine lanes, for the memory check (default 8)"
    )
    add_client_commands(commands)
    return parser


def add_hash_arguments(parser: argparse.ArgumentParser) -> None:
    """The hex input and the scrypt parameters (default: the Firefox Accounts set)."""
    parser.add_argument("input", help="the input, in hex")
    parser.add_argument("--salt", default=PICL_PARAMS.salt.decode(), help="salt (UTF-8)")
    parser.add_argument("-N", type=int, default=PICL_PARAMS.n, help="CPU/memory cost (power of two)")
    parser.add_argument("-r", type=int, default=PICL_PARAMS.r, help="block size")
    parser.add_argument("-p", type=int, default=PICL_PARAMS.p, help="parallelism")
    parser.add_argument("--buflen", type=int, default=PICL_PARAMS.buflen, help="output bytes")


def hash_arguments(args: argparse.Namespace) -> tuple[bytes, ScryptParams]:
    """The input and parameters given to ``add_hash_arguments``; ValueError when invalid."""
    params = ScryptParams(salt=args.salt.encode(), n=args.N, r=args.r, p=args.p, buflen=args.buflen)
    return bytes.fromhex(args.input), params


def cmd_hash(args: argparse.Namespace) -> int:
    try:
        data, params = hash_arguments(args)
    except ValueError as exc:
        print(f"scrypt-helper hash: {exc}", file=sys.stderr)
        return 2
    engine = select_engine(args.engine)
    print(engine.hash(params, data).hex())
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
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


def cmd_engines(args: argparse.Namespace) -> int:
    from scrypt_helper.bench.cli import TINY_PARAMS
    from scrypt_helper.bench.engine import list_engines

    params = TINY_PARAMS if args.tiny else PICL_PARAMS
    list_engines(seconds=args.seconds, threads=[int(t) for t in args.threads.split(",")], params=params)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from scrypt_helper.server import run

            run(settings_from_args(args))
            return 0
        if args.command == "hash":
            return cmd_hash(args)
        if args.command == "engines":
            return cmd_engines(args)
        if args.command == "capacity":
            return cmd_capacity(args)
        if args.command == "client":
            return cmd_client(args)
        if args.command == "stretch":
            return cmd_stretch(args)
        from scrypt_helper.bench.cli import run_bench

        return run_bench(args)
    except ValidationError as exc:
        print(f"scrypt-helper: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except (EngineUnavailable, SelfTestFailed, ValueError) as exc:
        print(f"scrypt-helper: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
