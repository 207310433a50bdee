"""Arguments shared by several commands: settings flags, the hash input and parameters, the deadline."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TypeAlias

from scrypt_helper.config import Settings
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The ``scrypt-helper`` subcommand parsers, on which each command group registers its commands."""


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


def add_hash_arguments(parser: argparse.ArgumentParser) -> None:
    """The hex input (an argument, else stdin) and the scrypt parameters (default: the PiCL set)."""
    parser.add_argument(
        "input",
        nargs="?",
        help="the input, in hex. Leave it out to give it on stdin (typed without echo on a terminal): "
        "that is the safe way, as command-line arguments show in ps and stay in shell history",
    )
    parser.add_argument("--salt", default=PICL_PARAMS.salt.decode(), help="salt (UTF-8)")
    parser.add_argument("-N", type=int, default=PICL_PARAMS.n, help="CPU/memory cost (power of two)")
    parser.add_argument("-r", type=int, default=PICL_PARAMS.r, help="block size")
    parser.add_argument("-p", type=int, default=PICL_PARAMS.p, help="parallelism")
    parser.add_argument("--buflen", type=int, default=PICL_PARAMS.buflen, help="output bytes")


def hash_arguments(args: argparse.Namespace) -> tuple[bytes, ScryptParams]:
    """The input and parameters given to ``add_hash_arguments``; ValueError when invalid.

    Without an input argument, the input is one line of stdin, surrounding whitespace ignored.
    """
    params = ScryptParams(salt=args.salt.encode(), n=args.N, r=args.r, p=args.p, buflen=args.buflen)
    text = args.input
    if text is None:
        text = read_secret("Input (hex): ")
        if text is None:
            raise ValueError("no input: give it in hex on stdin")
    return bytes.fromhex(text.strip()), params


def read_secret(prompt: str) -> str | None:
    """A secret: typed without echo on a terminal, else one line of stdin (UTF-8); None at EOF.

    UnicodeDecodeError (a ValueError) when the line is not UTF-8.
    """
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    return line.removesuffix(b"\n").decode()


def add_deadline_argument(parser: argparse.ArgumentParser) -> None:
    """``--deadline``: the most seconds a command spends on the helper."""
    parser.add_argument("--deadline", type=float, default=30.0, help="most seconds spent on the helper")


def complain(command: str, problem: object, status: int) -> int:
    """Say on stderr what went wrong, after the command's name, and return the exit status."""
    print(f"scrypt-helper {command}: {problem}", file=sys.stderr)
    return status
