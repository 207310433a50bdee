"""``serve``: run the web service, configured by the environment and the command line."""

from __future__ import annotations

import argparse
import errno
import socket

from scrypt_helper.cli.arguments import (
    CommandFailed,
    Commands,
    UsageError,
    add_settings_flags,
    settings_from_args,
)
from scrypt_helper.core.config import ENV_PREFIX, Settings
from scrypt_helper.engines.registry import NATIVE_NAMES


def register(commands: Commands) -> None:
    """Add ``serve``, with one flag per setting."""
    serve = commands.add_parser(
        "serve",
        help="run the web service",
        description="Run the web service. Every flag is also an environment variable; the flag wins.",
    )
    add_settings_flags(serve)
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until stopped; a ValidationError for bad settings, CommandFailed for a port in use."""
    settings = settings_from_args(args)
    check_combination(settings)
    check_ports(settings)
    from scrypt_helper.runtime.server import run  # the server's imports: only when serving

    run(settings)
    return 0


def check_combination(settings: Settings) -> None:
    """UsageError for settings each valid alone that cannot go together, before any engine starts."""
    from scrypt_helper.runtime.processes import plan_processes

    try:
        plan_processes(settings)
    except ValueError as exc:
        raise UsageError(f"{ENV_PREFIX}PROCESSES / --processes: {exc}") from None
    # Only the native kernel owns its buffers; a library engine allocates them inside each call.
    if settings.lock_memory and settings.engine not in ("auto", *NATIVE_NAMES):
        raise UsageError(
            f"{ENV_PREFIX}LOCK_MEMORY / --lock-memory: the {settings.engine} engine cannot lock its buffers "
            "(its library allocates them inside each call); choose a native engine or --no-lock-memory"
        )


def check_ports(settings: Settings) -> None:
    """Bind the host's ports once and let them go, before any engine starts: UsageError for a host
    that is no address of this machine, CommandFailed for a port in use."""
    ports = {"port": settings.port}
    if settings.metrics_port is not None:
        if settings.metrics_port == settings.port != 0:
            raise UsageError(f"{ENV_PREFIX}METRICS_PORT / --metrics-port: the service's port; give another")
        ports["metrics_port"] = settings.metrics_port
    for name, port in ports.items():
        try_binding(settings.host, name, port)


def try_binding(host: str, name: str, port: int) -> None:
    """Bind ``host``:``port`` as uvicorn does (``SO_REUSEADDR``), then close the socket."""
    where = f"{ENV_PREFIX}HOST / --host"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"{where}: {host!r} is not an address to listen on ({exc})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"{where}: {host!r} is no address of this machine") from None
            flag = f"{ENV_PREFIX}{name.upper()} / --{name.replace('_', '-')}"
            raise CommandFailed(f"{flag}: cannot listen on {host}:{port}: {exc.strerror}") from None
