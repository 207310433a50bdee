"""``hash`` and ``engines``: scrypt computed on this machine, one answer or each engine's speed."""

from __future__ import annotations

import argparse

from scrypt_helper.cli.arguments import (
    Commands,
    add_hash_arguments,
    comma_list,
    complain,
    engine_name,
    hash_arguments,
    positive,
)
from scrypt_helper.engines import EngineUnavailable, select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS


def register(commands: Commands) -> None:
    """Add ``hash`` and ``engines``."""
    hash_ = commands.add_parser(
        "hash",
        help="compute one scrypt locally and print its hex output; the input is read from stdin if not given",
    )
    add_hash_arguments(hash_)
    hash_.add_argument("--engine", type=engine_name, default="auto", help="engine name or auto")
    hash_.set_defaults(handler=cmd_hash)

    engines = commands.add_parser("engines", help="list the engines that run here, with a quick speed")
    engines.add_argument(
        "--seconds", type=positive(float), default=1.0, help="measuring time per engine and thread count"
    )
    engines.add_argument(
        "--threads", type=comma_list(positive(int)), default="1", help="comma-separated thread counts"
    )
    engines.add_argument("--tiny", action="store_true", help="N=1024 instead of the production parameters")
    engines.add_argument(
        "--reference",
        action="store_true",
        help="instead, each native variant against py-scrypt (the 2013 helper's engine; the bench extra), "
        "one thread each, alternated --rounds times",
    )
    engines.add_argument("--rounds", type=positive(int), default=3, help="rounds of --reference (default: 3)")
    engines.set_defaults(handler=cmd_engines)


def cmd_hash(args: argparse.Namespace) -> int:
    """Print the hex scrypt output of the hex input; 2 when the input or parameters are invalid."""
    try:
        data, params = hash_arguments(args)
    except ValueError as exc:
        return complain("hash", exc, 2)
    engine = select_engine(args.engine)
    print(engine.hash(params, data).hex())
    return 0


def cmd_engines(args: argparse.Namespace) -> int:
    """Print each engine that runs here with its self-test result and speed."""
    from scrypt_helper.bench.engine import TINY_PARAMS, compare_with_reference, list_engines

    params = TINY_PARAMS if args.tiny else PICL_PARAMS
    if args.reference:
        try:
            compare_with_reference(params, seconds=args.seconds, rounds=args.rounds)
        except EngineUnavailable as exc:
            return complain("engines", exc, 1)
        return 0
    list_engines(seconds=args.seconds, threads=args.threads, params=params)
    return 0
