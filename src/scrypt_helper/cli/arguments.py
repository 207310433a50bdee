"""What the commands share: settings flags, argument types, the hash input and parameters, the deadline,
the help format, and the errors that end a command with status 2 or 1."""

from __future__ import annotations

import argparse
import getpass
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from pydantic_core import PydanticUndefined

from scrypt_helper.core.config import ENV_PREFIX, Settings
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.registry import ENGINE_NAMES
from scrypt_helper.engines.vectors import PICL_PARAMS

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The ``scrypt-helper`` subcommand parsers, on which each command group registers its commands."""


T = TypeVar("T")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless it has none to show or its help names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False) or "default" in text.lower():
            return text
        return super()._get_help_string(action)

    def _format_action(self, action: argparse.Action) -> str:
        # A group of commands lists the commands alone, as pip does, without a COMMAND line above them.
        if isinstance(action, argparse._SubParsersAction):
            return "".join(self._format_action(command) for command in action._get_subactions())
        return super()._format_action(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose help shows the defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


class UsageError(Exception):
    """A bad value found after parsing (a file's contents, say): the command exits with status 2."""


class CommandFailed(Exception):
    """A failure of the command's own work (a port in use, say): the command exits with status 1."""


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _setting_default(name: str) -> str:
    """How help shows a setting's default: its value, or what its description says."""
    field = Settings.model_fields[name]
    if "default" in (field.description or "").lower():
        return ""
    if field.default is None or field.default is PydanticUndefined:
        return " (default: unset)"
    value = field.default
    if isinstance(value, bool):
        value = str(value).lower()
    elif value == ():
        value = "none"
    elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        value = ",".join(value)
    if not isinstance(value, str | int | float):
        return ""
    return f" (default: {value})"


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, named like its environment variable (``--queue-size``); a boolean
    setting is a pair (``--lock-memory`` / ``--no-lock-memory``). Unset flags leave the environment's
    value (or the default) in force."""
    for name, field in Settings.model_fields.items():
        env = f"{ENV_PREFIX}{name.upper()}"
        text = f"{field.description}{_setting_default(name)} [env {env}]"
        if field.annotation is bool:
            parser.add_argument(
                _flag(name), dest=name, default=None, action=argparse.BooleanOptionalAction, help=text
            )
        else:
            parser.add_argument(_flag(name), dest=name, default=None, help=text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given on the command line."""
    given: dict[str, Any] = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None
    }
    return Settings(**given)


def positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type: a finite value of ``kind`` above zero."""

    noun = "a whole number" if kind is int else "a number"

    def convert(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not 0 < value < math.inf:  # type: ignore[operator]
            raise argparse.ArgumentTypeError(f"must be {noun} above 0, not {text!r}")
        return value

    return convert


def comma_list(kind: Callable[[str], T]) -> Callable[[str], list[T]]:
    """An argparse type: comma-separated values of ``kind``, at least one."""

    def convert(text: str) -> list[T]:
        values = [kind(item.strip()) for item in text.split(",") if item.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"give at least one value, not {text!r}")
        return values

    return convert


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type: one of ``choices``."""

    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"unknown {text!r}; choose from {', '.join(choices)}")
        return text

    return convert


def engine_name(text: str) -> str:
    """An argparse type: ``auto`` or a known engine's name."""
    if text != "auto" and text not in ENGINE_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown engine {text!r}; choose auto or one of {', '.join(ENGINE_NAMES)}"
        )
    return text


def readable_file(text: str) -> Path:
    """An argparse type: a path to a file this process can read."""
    path = Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror}") from None
    return path


def add_hash_arguments(parser: argparse.ArgumentParser) -> None:
    """The hex input (an argument, else stdin) and the scrypt parameters (default: the PiCL set)."""
    parser.add_argument(
        "input",
        nargs="?",
        help="the input, in hex. Leave it out to give it on stdin (typed without echo on a terminal): "
        "that is the safe way, as command-line arguments show in ps and stay in shell history",
    )
    parser.add_argument("--salt", default=PICL_PARAMS.salt.decode(), help="salt (UTF-8)")
    parser.add_argument(
        "-N", type=positive(int), default=PICL_PARAMS.n, help="CPU/memory cost (power of two)"
    )
    parser.add_argument("-r", type=positive(int), default=PICL_PARAMS.r, help="block size")
    parser.add_argument("-p", type=positive(int), default=PICL_PARAMS.p, help="parallelism")
    parser.add_argument("--buflen", type=positive(int), default=PICL_PARAMS.buflen, help="output bytes")


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
    parser.add_argument(
        "--deadline", type=positive(float), default=30.0, help="most seconds spent on the helper"
    )


def complain(command: str, problem: object, status: int) -> int:
    """Say on stderr what went wrong, after the command's name, and return the exit status."""
    print(f"scrypt-helper {command}: {problem}", file=sys.stderr)
    return status
