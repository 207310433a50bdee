"""scrypt from the bundled C extension: multi-buffer SIMD ROMix, GIL released.

One ``hash_batch`` call runs up to ``lanes`` independent hashes through the
same SIMD instructions (AVX-512: 8, AVX2: 6, SSE2: 4, portable C: 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from scrypt_helper.engines.base import Engine, EngineUnavailable, HashContext, ScryptParams

try:
    from scrypt_helper import _native
except ImportError as exc:  # built without a C compiler or OpenSSL headers
    _native = None
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

#: Every variant a build may have, best first.
KNOWN_VARIANTS = ("avx512", "avx2", "sse2", "portable")


def available_variants() -> tuple[str, ...]:
    """Variants this build and this CPU support, best first (empty when not built)."""
    if _native is None:
        return ()
    return tuple(_native.variants())


class _NativeContext(HashContext):
    def __init__(self, variant: str, lock_memory: bool) -> None:
        assert _native is not None
        self._ctx = _native.Context(variant, lock_memory=lock_memory)
        self.lanes = self._ctx.lanes

    def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
        return self._ctx.hash_batch(inputs, params.salt, params.n, params.r, params.p, params.buflen)

    def reserve(self, params: ScryptParams) -> None:
        # Faulting in a full batch's buffer costs a first batch a large share of its time at the
        # production parameters: written here, those pages are mapped before any request comes.
        self._ctx.reserve(params.n, params.r, params.p)

    @property
    def buffer_bytes(self) -> int:
        """Bytes held for ROMix buffers."""
        return self._ctx.buffer_bytes

    def wipe(self) -> None:
        self._ctx.wipe()

    def close(self) -> None:
        self._ctx.close()


class NativeEngine(Engine):
    """The C kernel; ``variant`` None picks the best one this CPU supports.

    Its contexts wipe their buffers (``wipe``, ``close``), keep them out of core dumps, and
    lock them in RAM once ``lock_buffers`` has been called.
    """

    wipes_state = True

    def __init__(self, variant: str | None = None) -> None:
        if _native is None:
            raise EngineUnavailable(f"the native scrypt kernel is not built: {_IMPORT_ERROR}")
        supported = available_variants()
        if variant is None:
            if not supported:  # pragma: no cover - portable is always supported
                raise EngineUnavailable("the native scrypt kernel supports no variant on this CPU")
            chosen = supported[0]
            self.name = "native"
        else:
            if variant not in KNOWN_VARIANTS:
                raise EngineUnavailable(
                    f"unknown native variant {variant!r}; known: {', '.join(KNOWN_VARIANTS)}"
                )
            if variant not in supported:
                raise EngineUnavailable(
                    f"native variant {variant!r} is not available on this CPU or build "
                    f"(available: {', '.join(supported) or 'none'})"
                )
            chosen = variant
            self.name = f"native-{variant}"
        self.variant: str = chosen
        self.lanes = _native.lanes(chosen)

    def open_context(self) -> HashContext:
        return _NativeContext(self.variant, self.locks_memory)

    def lock_buffers(self, params: Sequence[ScryptParams]) -> int:
        assert _native is not None
        need = max(_native.footprint(self.variant, p.n, p.r, p.p) for p in params)
        self.locks_memory = True
        return need
