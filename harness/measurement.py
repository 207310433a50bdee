"""The command line the harness's measurements share: how long, which engine, tiny or production
parameters, and where the JSON report goes."""

from __future__ import annotations

import argparse
from pathlib import Path

from scrypt_helper.bench.engine import TINY_PARAMS
from scrypt_helper.engines import ScryptParams, select_engine
from scrypt_helper.engines.vectors import PICL_PARAMS


def measurement_arguments(prog: str, description: str | None) -> argparse.ArgumentParser:
    """``--seconds``, ``--engine``, ``--tiny`` and ``--out``; the caller adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--engine", default="auto", help="the nodes' engine")
    parser.add_argument("--tiny", action="store_true", help="N=1024 instead of the production parameters")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for the JSON report")
    return parser


def params_and_engine(args: argparse.Namespace) -> tuple[ScryptParams, str]:
    """The parameters and the engine's name the arguments ask for."""
    return TINY_PARAMS if args.tiny else PICL_PARAMS, select_engine(args.engine).name


def report_name(stem: str, engine: str, args: argparse.Namespace) -> str:
    """The report's file name, without ``.json``: ``stem-engine`` and ``-tiny`` for tiny runs."""
    return f"{stem}-{engine}{'-tiny' if args.tiny else ''}"
