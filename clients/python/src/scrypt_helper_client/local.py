"""scrypt computed in this process: the fallback when no helper answers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from scrypt_helper_client.params import ScryptParameters

#: How a client computes a hash itself: ``(params, data) -> output``.
LocalHash = Callable[[ScryptParameters, bytes], bytes]

#: OpenSSL refuses more than this (hashlib's ``maxmem`` is a C int).
_MAXMEM_CEILING = 2**31 - 1


def local_hash(params: ScryptParameters, data: bytes) -> bytes:
    """scrypt of ``data`` by OpenSSL through ``hashlib``; ValueError for a set it cannot hold in memory."""
    # OpenSSL needs 128·r·(N + p + 2) bytes; hashlib's default allowance (32 MiB) is below PiCL's 64 MiB.
    needed = 128 * params.r * (params.n + params.p + 2)
    return hashlib.scrypt(
        data,
        salt=params.salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=min(_MAXMEM_CEILING, needed + (1 << 20)),
        dklen=params.buflen,
    )
