"""``client`` and ``stretch``: the client library (``scrypt_helper_client``) from the command line.

The library (and httpx) is imported only when one of them runs, to keep other commands quick. Its local
fallback computes on this package's fastest engine rather than on OpenSSL.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from scrypt_helper.cli.arguments import (
    Commands,
    UsageError,
    add_deadline_argument,
    add_hash_arguments,
    complain,
    hash_arguments,
    read_secret,
)

if TYPE_CHECKING:
    from scrypt_helper_client import Client, ScryptParameters


def register(commands: Commands) -> None:
    """Add ``client`` and ``stretch``."""
    client = commands.add_parser("client", help="ask a helper node for one scrypt and print its hex output")
    add_hash_arguments(client)
    add_url_argument(client, required=True)
    client.add_argument(
        "--fallback", action="store_true", help="compute locally when the helper does not answer"
    )
    add_deadline_argument(client)
    add_insecure_http_argument(client)
    client.set_defaults(handler=cmd_client)

    stretch = commands.add_parser(
        "stretch", help="Firefox Accounts password stretch; reads the password from the terminal or stdin"
    )
    stretch.add_argument("--email", required=True, help="the account's email address")
    add_url_argument(stretch, required=False)
    add_deadline_argument(stretch)
    add_insecure_http_argument(stretch)
    stretch.set_defaults(handler=cmd_stretch)


def add_url_argument(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--url``, repeatable: one helper base URL per region, tried in the order given."""
    parser.add_argument(
        "--url",
        action="append",
        required=required,
        help="a helper, e.g. https://scrypt.example.com; repeat it for one URL per region, tried in order "
        "(a failed one is tried last for a while)" + ("" if required else " (default: compute here)"),
    )


def add_insecure_http_argument(parser: argparse.ArgumentParser) -> None:
    """``--allow-insecure-http``: the only way to send secrets over plain HTTP beyond loopback."""
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow an http:// URL to a host other than this machine (the input then crosses the "
        "network unencrypted); without it only https:// and loopback http:// are used",
    )


def cmd_client(args: argparse.Namespace) -> int:
    """Print the helper's answer for the hex input."""
    try:
        data, params = hash_arguments(args)
    except ValueError as exc:
        return complain("client", exc, 2)
    from scrypt_helper_client import ClientError

    with open_client(args, params=params, fallback=args.fallback) as client:
        try:
            output = client.hash(data)
        except (ClientError, ValueError) as exc:
            return complain("client", exc, 1)
    print(output.hex())
    return 0


def open_client(args: argparse.Namespace, **options: Any) -> Client:
    """A client of the helpers given by ``--url``; UsageError for a URL it refuses."""
    from scrypt_helper_client import Client

    try:
        return Client(
            args.url,
            deadline=args.deadline,
            allow_insecure_http=args.allow_insecure_http,
            local=hash_here,
            **options,
        )
    except ValueError as exc:
        raise UsageError(f"argument --url: {exc}") from None


def hash_here(params: ScryptParameters, data: bytes) -> bytes:
    """scrypt on the fastest engine here that passes its self-test: the client's local fallback."""
    from scrypt_helper.engines import ScryptParams, select_engine

    own = ScryptParams(salt=params.salt, n=params.n, r=params.r, p=params.p, buflen=params.buflen)
    return select_engine("auto").hash(own, data)


def cmd_stretch(args: argparse.Namespace) -> int:
    """Print stretchedPW for the email and the password read from the terminal or stdin."""
    try:
        password = read_secret("Password: ")
    except UnicodeDecodeError:
        return complain("stretch", "the password is not UTF-8", 2)
    if password is None:
        return complain("stretch", "no password given on stdin", 2)
    from scrypt_helper_client import ClientError, first_pbkdf, second_pbkdf

    with open_client(args) as client:
        try:
            k2 = client.hash(first_pbkdf(args.email, password))
        except (ClientError, ValueError) as exc:
            return complain("stretch", exc, 1)
    print(second_pbkdf(args.email, password, k2).hex())
    return 0
