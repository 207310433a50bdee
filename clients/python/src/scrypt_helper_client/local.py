"""scrypt computed in this process: the fallback when no helper answers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from scrypt_helper_client.params import ScryptParameters

#: How a client computes a hash itself: ``(params, data) -> output``.
LocalHash = Callable[[ScryptParameters, bytes], bytes]

#: OpenSSL refuses more than this (hashlib's ``maxmem`` is a C int).
_MAXMEM_CEILING = 2**31 - 1


def maxmem_for(params: ScryptParameters) -> int:
    """The memory bound to give OpenSSL or libsodium: the hash's own 128·r·(N + p + 2) bytes plus
    slack (hashlib's default allowance, 32 MiB, is below PiCL's 64 MiB)."""
    return min(_MAXMEM_CEILING, 128 * params.r * (params.n + params.p + 2) + (1 << 20))


def local_hash(params: ScryptParameters, data: bytes) -> bytes:
    """scrypt of ``data`` by OpenSSL through ``hashlib``; ValueError for a set it cannot hold in memory."""
    return hashlib.scrypt(
        data,
        salt=params.salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=maxmem_for(params),
        dklen=params.buflen,
    )
