"""scrypt from libsodium through PyNaCl (cffi releases the GIL during the call)."""

from __future__ import annotations

from scrypt_helper.engines.base import Engine, EngineUnavailable, HashContext, ScryptParams, SingleHashContext
from scrypt_helper_client.local import maxmem_for

try:
    from nacl import bindings as _nacl
except ImportError:  # pragma: no cover - PyNaCl is a required dependency
    _nacl = None


class _LibsodiumContext(SingleHashContext):
    def hash_one(self, params: ScryptParams, data: bytes) -> bytes:
        assert _nacl is not None
        return _nacl.crypto_pwhash_scryptsalsa208sha256_ll(
            bytes(data),
            params.salt,
            params.n,
            params.r,
            params.p,
            dklen=params.buflen,
            maxmem=maxmem_for(params),
        )


class LibsodiumEngine(Engine):
    """libsodium's portable or SSE2 scrypt, one hash per call."""

    name = "libsodium"
    lanes = 1

    def __init__(self) -> None:
        if _nacl is None or not _nacl.has_crypto_pwhash_scryptsalsa208sha256:
            raise EngineUnavailable("PyNaCl with scrypt support is not installed")

    def open_context(self) -> HashContext:
        return _LibsodiumContext()
