"""``serve``: run the web service, configured by the environment and the command line."""

from __future__ import annotations

import argparse

from scrypt_helper.cli.arguments import Commands, add_settings_flags, settings_from_args


def register(commands: Commands) -> None:
    """Add ``serve``, with one flag per setting."""
    serve = commands.add_parser("serve", help="run the web service")
    add_settings_flags(serve)
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until stopped; a ValidationError for bad settings."""
    from scrypt_helper.server import run  # the server's imports: only when serving

    run(settings_from_args(args))
    return 0
