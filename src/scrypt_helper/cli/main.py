"""The ``scrypt-helper`` command: the service, and its tools to hash, measure, size and ask a helper."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from scrypt_helper import __version__
from scrypt_helper.cli import bench, client, local, serve
from scrypt_helper.cli.arguments import CommandFailed, HelpFormatter, Parser, UsageError
from scrypt_helper.core.config import ENV_PREFIX, Settings
from scrypt_helper.engines import EngineUnavailable, SelfTestFailed

# In the order ``--help`` lists their commands.
COMMAND_GROUPS = (serve, local, bench, client)

# Errors about a scalar's form, whose value may be quoted back: no secret setting (a DSN, a URL,
# API keys) is a number, a boolean or a choice, so none of them can raise one of these.
QUOTABLE_ERRORS = frozenset(
    {
        "int_parsing",
        "int_from_float",
        "float_parsing",
        "bool_parsing",
        "literal_error",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


DESCRIPTION = "A web service that computes scrypt for clients that cannot afford it, and its tools."
EPILOG = """\
Run 'scrypt-helper COMMAND --help' for a command's options.

exit status:
  0  success
  1  a runtime failure: a port in use, an engine that does not run here, a helper that did not answer
  2  a usage error: a bad flag, environment value, file or URL
  130  interrupted
"""


class TopLevelHelp(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The commands' help format, with the epilog's lines kept as written."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--version`` and every group's commands, each with its handler."""
    parser = Parser(
        prog="scrypt-helper",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=TopLevelHelp,
    )
    parser.add_argument("--version", action="version", version=f"scrypt-helper {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def describe_invalid_settings(exc: ValidationError) -> list[str]:
    """One line per bad value, naming the setting as its variable and its flag, then what is wrong:
    ``SCRYPT_HELPER_WORKERS / --workers: Input should be a valid integer, ... (got 'abc')``."""
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] in QUOTABLE_ERRORS:
            message += f" (got {str(error['input'])[:40]!r})"
        field, *inner = error["loc"] or ("",)
        if exc.title == Settings.__name__ and field in Settings.model_fields:
            name = str(field)
            where = f"{ENV_PREFIX}{name.upper()} / --{name.replace('_', '-')}"
        else:
            where = str(field)
        if inner:
            where += " [" + "][".join(str(part) for part in inner) + "]"
        lines.append(f"{where}: {message}" if where else message)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen command and return its exit status; errors it lets through become 1, 2 or 130."""
    args = build_parser().parse_args(bench.with_default_mode(sys.argv[1:] if argv is None else argv))
    try:
        status: int = args.handler(args)
    except ValidationError as exc:
        for line in describe_invalid_settings(exc):
            print(f"scrypt-helper: error: {line}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"scrypt-helper: error: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"scrypt-helper: error: {exc}", file=sys.stderr)
        return 1
    except (EngineUnavailable, SelfTestFailed, ValueError, OSError) as exc:
        print(f"scrypt-helper: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
