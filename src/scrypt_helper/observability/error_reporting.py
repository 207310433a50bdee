"""Faults reported to Sentry, when a DSN is set, with nothing in them that could carry a secret.

Off unless ``--sentry-dsn`` / ``SCRYPT_HELPER_SENTRY_DSN`` or the conventional ``SENTRY_DSN`` is
set. Sentry's Starlette and FastAPI integrations report an exception escaping the app (a fault:
the client got the JSON 500), and its logging integration reports ERROR lines (a worker's failed
batch). A request body is never read into an event, frames carry no local variables (a hash
input passes through several), request headers are cut to ``SAFE_HEADERS`` (never
``X-API-Key``), and cookies, query strings and the user's address are dropped.
"""

from __future__ import annotations

import os
from typing import Any

from scrypt_helper import __version__
from scrypt_helper.core.config import Settings

# Request headers an event may carry: none of them holds a credential or a hash input.
SAFE_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-length",
        "content-type",
        "host",
        "origin",
        "user-agent",
        "x-request-id",
    }
)


def reporting_dsn(settings: Settings) -> str | None:
    """The DSN to report to: the setting, else ``SENTRY_DSN``; None (or empty) keeps reporting off."""
    if settings.sentry_dsn is not None:
        return settings.sentry_dsn.get_secret_value() or None
    return os.environ.get("SENTRY_DSN") or None


def configure_error_reporting(settings: Settings) -> bool:
    """Start reporting faults if a DSN is set; True if it did."""
    dsn = reporting_dsn(settings)
    if dsn is None:
        return False
    # Imported only when reporting is on: sentry-sdk and what it pulls in (an HTTP client among them)
    # are a quarter of a node's start-up imports, paid by every front process.
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=f"scrypt-helper@{__version__}",
        integrations=[StarletteIntegration(), FastApiIntegration()],
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "allowlist", "terms": sorted(SAFE_HEADERS)}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "stack_frame_variables": False,
        },
        traces_sample_rate=0.0,  # faults only: the node reports its performance through /metrics
        before_send=scrub,  # and again, whatever an integration collects
    )
    return True


def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Keep only what cannot carry a secret of the request: its method, path and safe headers."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": request.get("url"),
            "headers": {name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS},
        }
    event.pop("user", None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return event
