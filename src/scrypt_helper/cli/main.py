"""The ``scrypt-helper`` command: serve, hash, engines, bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from scrypt_helper import __version__
from scrypt_helper.cli import bench, client, local, serve
from scrypt_helper.engines import EngineUnavailable, SelfTestFailed

# In the order ``--help`` lists their commands.
COMMAND_GROUPS = (serve, local, bench, client)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--version`` and every group's commands, each with its handler."""
    parser = argparse.ArgumentParser(prog="scrypt-helper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scrypt-helper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen command and return its exit status; errors it lets through become 1, 2 or 130."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except ValidationError as exc:
        print(f"scrypt-helper: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except (EngineUnavailable, SelfTestFailed, ValueError) as exc:
        print(f"scrypt-helper: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
