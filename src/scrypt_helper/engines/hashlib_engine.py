"""scrypt from the standard library (OpenSSL's EVP_PBE_scrypt, GIL released): the client library's
own local computation, which this engine runs rather than keeping a copy."""

from __future__ import annotations

import hashlib

from scrypt_helper.engines.base import Engine, EngineUnavailable, HashContext, ScryptParams, SingleHashContext
from scrypt_helper_client.local import local_hash


class _HashlibContext(SingleHashContext):
    def hash_one(self, params: ScryptParams, data: bytes) -> bytes:
        return local_hash(params, data)


class HashlibEngine(Engine):
    """Always available where Python was built with OpenSSL 1.1+."""

    name = "hashlib"
    lanes = 1

    def __init__(self) -> None:
        if not hasattr(hashlib, "scrypt"):
            raise EngineUnavailable("this Python's hashlib has no scrypt")

    def open_context(self) -> HashContext:
        return _HashlibContext()
