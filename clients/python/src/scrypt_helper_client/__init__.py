"""Ask a scrypt-helper node for scrypt, retrying politely, else compute it here.

``Client(url).hash(data)`` posts ``data`` to the helper and returns the checked output;
``AsyncClient`` is the same for asyncio; ``stretch`` is the Firefox Accounts onepw password stretch
built on them. Inputs and outputs are secrets: never logged, never put into exception messages.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from scrypt_helper_client.errors import ClientError, HelperError, HelperUnavailable
from scrypt_helper_client.failover import DEFAULT_COOLDOWN, UrlHealth
from scrypt_helper_client.local import LocalHash, local_hash
from scrypt_helper_client.params import PICL_PARAMS, Params, ScryptParameters, request_body, wire_params
from scrypt_helper_client.stretch import async_stretch, first_pbkdf, second_pbkdf, stretch
from scrypt_helper_client.version import __version__

if TYPE_CHECKING:
    from scrypt_helper_client.client import AsyncClient, Client
    from scrypt_helper_client.retries import retry_after_seconds

# What needs httpx is imported at first use (``stretch`` imports the client when called), so
# that computing locally (``local_hash``, or a server using this package's parameters) does not
# pay for the HTTP stack.
_NEEDING_HTTPX = {
    "AsyncClient": "client",
    "Client": "client",
    "retry_after_seconds": "retries",
}

__all__ = [
    "DEFAULT_COOLDOWN",
    "PICL_PARAMS",
    "AsyncClient",
    "Client",
    "ClientError",
    "HelperError",
    "HelperUnavailable",
    "LocalHash",
    "Params",
    "ScryptParameters",
    "UrlHealth",
    "__version__",
    "async_stretch",
    "first_pbkdf",
    "local_hash",
    "request_body",
    "retry_after_seconds",
    "second_pbkdf",
    "stretch",
    "wire_params",
]


def __getattr__(name: str) -> Any:
    module = _NEEDING_HTTPX.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
