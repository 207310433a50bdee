"""scrypt from the standard library (OpenSSL's EVP_PBE_scrypt, GIL released)."""

from __future__ import annotations

import hashlib

from scrypt_helper.engines.base import Engine, EngineUnavailable, HashContext, ScryptParams, SingleHashContext

# OpenSSL refuses work over maxmem; hashlib caps the argument at INT_MAX.
_MAXMEM_CAP = 2**31 - 1


def maxmem_for(params: ScryptParams) -> int:
    """Memory bound to pass to OpenSSL or libsodium: the hash's own need plus slack."""
    need = params.romix_bytes + 128 * params.r * (params.p + 2) + (1 << 20)
    return min(need, _MAXMEM_CAP)


class _HashlibContext(SingleHashContext):
    def hash_one(self, params: ScryptParams, data: bytes) -> bytes:
        return hashlib.scrypt(
            data,
            salt=params.salt,
            n=params.n,
            r=params.r,
            p=params.p,
            dklen=params.buflen,
            maxmem=maxmem_for(params),
        )


class HashlibEngine(Engine):
    """Always available where Python was built with OpenSSL 1.1+."""

    name = "hashlib"
    lanes = 1

    def __init__(self) -> None:
        if not hasattr(hashlib, "scrypt"):
            raise EngineUnavailable("this Python's hashlib has no scrypt")

    def open_context(self) -> HashContext:
        return _HashlibContext()
