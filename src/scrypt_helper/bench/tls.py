"""One TLS context for every HTTP client a process of the benchmarks, the harness or the tests makes.

httpx builds a context for each client, ``httpx.get`` and ``httpx.post`` included, by loading the
whole CA bundle: about 40 ms of CPU each time. A start-up poll twenty times a second, or a test's
probes on fresh connections, would pay that on every call.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """httpx's default context (certifi's CA bundle, or ``SSL_CERT_FILE``), built once."""
    return httpx.create_ssl_context()


def http_get(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.get`` on a fresh connection, with the shared context."""
    return httpx.get(url, verify=shared_tls(), **kwargs)


def http_post(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.post`` on a fresh connection, with the shared context."""
    return httpx.post(url, verify=shared_tls(), **kwargs)
