"""The Firefox Accounts onepw password stretch: PBKDF2, scrypt (on a helper, else here), PBKDF2."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

FIRST_PBKDF_SALT = b"identity.mozilla.com/picl/v1/first-PBKDF:"
SECOND_PBKDF_SALT = b"identity.mozilla.com/picl/v1/second-PBKDF:"
PBKDF2_ROUNDS = 20000
PBKDF2_BYTES = 32


def first_pbkdf(email: str, password: str) -> bytes:
    """k1 = PBKDF2-HMAC-SHA256(password, first-PBKDF salt + email, 20000 rounds, 32 bytes)."""
    return hashlib.pbkdf2_hmac(
        "sha256", password.encode(), FIRST_PBKDF_SALT + email.encode(), PBKDF2_ROUNDS, PBKDF2_BYTES
    )


def second_pbkdf(email: str, password: str, k2: bytes) -> bytes:
    """stretchedPW = PBKDF2-HMAC-SHA256(k2 + password, second-PBKDF salt + email, 20000, 32)."""
    return hashlib.pbkdf2_hmac(
        "sha256", k2 + password.encode(), SECOND_PBKDF_SALT + email.encode(), PBKDF2_ROUNDS, PBKDF2_BYTES
    )


def stretch(
    email: str, password: str, url: str | Sequence[str] | None = None, *, allow_insecure_http: bool = False
) -> bytes:
    """The onepw stretchedPW: PBKDF2, scrypt (on the helper at ``url``, else locally), PBKDF2."""
    from scrypt_helper_client.client import Client  # httpx at first use (see __init__)

    with Client(url, allow_insecure_http=allow_insecure_http) as client:
        return second_pbkdf(email, password, client.hash(first_pbkdf(email, password)))


async def async_stretch(
    email: str, password: str, url: str | Sequence[str] | None = None, *, allow_insecure_http: bool = False
) -> bytes:
    """``stretch`` for asyncio; the PBKDF2 steps run in a thread."""
    from scrypt_helper_client.client import AsyncClient

    async with AsyncClient(url, allow_insecure_http=allow_insecure_http) as client:
        k1 = await asyncio.to_thread(first_pbkdf, email, password)
        k2 = await client.hash(k1)
    return await asyncio.to_thread(second_pbkdf, email, password, k2)
