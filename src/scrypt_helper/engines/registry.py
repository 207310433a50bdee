"""Engine names, construction, automatic choice and the known-answer self-test."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import MappingProxyType

from scrypt_helper.engines import vectors
from scrypt_helper.engines.base import Engine, EngineUnavailable, SelfTestFailed
from scrypt_helper.engines.hashlib_engine import HashlibEngine
from scrypt_helper.engines.libsodium import LibsodiumEngine

logger = logging.getLogger("scrypt_helper.engines")

NATIVE_VARIANTS = ("avx512", "avx2", "sse2", "portable")
NATIVE_NAMES = ("native", *(f"native-{variant}" for variant in NATIVE_VARIANTS))
ENGINE_NAMES = (*NATIVE_NAMES, "libsodium", "hashlib")
#: Preference order of ``auto``: fastest first.
AUTO_ORDER = ("native", "libsodium", "hashlib")

# Vectors cheap enough for every start: RFC 7914 N=16 and N=16384, and both PiCL answers.
SELF_TEST_VECTORS = (vectors.RFC7914[0], vectors.RFC7914[2], *vectors.PICL)


def _native_factory(name: str) -> Callable[[], Engine]:
    variant = None if name == "native" else name.removeprefix("native-")

    def create() -> Engine:
        try:
            from scrypt_helper.engines.native import NativeEngine
        except ImportError as exc:
            raise EngineUnavailable(f"the native kernel is not built: {exc}") from exc
        return NativeEngine(variant)

    return create


_FACTORIES: dict[str, Callable[[], Engine]] = {
    **{name: _native_factory(name) for name in NATIVE_NAMES},
    "libsodium": LibsodiumEngine,
    "hashlib": HashlibEngine,
}


def create_engine(name: str) -> Engine:
    """Build the engine called ``name``; EngineUnavailable where it cannot run here."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        choices = ", ".join(ENGINE_NAMES)
        raise ValueError(f"unknown engine {name!r}; choose auto or one of {choices}") from None
    return factory()


def self_test(engine: Engine) -> None:
    """Check the engine against published answers; raise SelfTestFailed on any mismatch.

    Every lane of a full batch is checked: the PiCL answers alternate across the
    lanes so that a lane mix-up shows as a wrong output. Each batch's seconds are kept in
    ``engine.tested_batch_seconds``.
    """
    ctx = engine.open_context()
    sets = list(dict.fromkeys(answer.params for answer in SELF_TEST_VECTORS))
    seconds = {}
    try:
        ctx.reserve(max(sets, key=lambda params: params.romix_bytes))  # the most memory: every set fits
        for params in sets:
            answers = [a for a in SELF_TEST_VECTORS if a.params == params]
            batch = [answers[i % len(answers)] for i in range(ctx.lanes)]
            started = time.perf_counter()
            outputs = ctx.hash_batch(params, [a.password for a in batch])
            seconds[params.n, params.r, params.p] = time.perf_counter() - started
            for lane, (answer, output) in enumerate(zip(batch, outputs, strict=True)):
                if output != answer.output:
                    raise SelfTestFailed(
                        f"engine {engine.name} gave a wrong scrypt answer "
                        f"(N={params.n}, r={params.r}, p={params.p}, lane {lane}); refusing to serve"
                    )
    finally:
        ctx.close()
    engine.tested_batch_seconds = MappingProxyType(seconds)


def select_engine(name: str = "auto") -> Engine:
    """Return a self-tested engine: ``name``, or for ``auto`` the first of AUTO_ORDER that works."""
    if name != "auto":
        engine = create_engine(name)
        self_test(engine)
        return engine
    for candidate in AUTO_ORDER:
        try:
            engine = create_engine(candidate)
            self_test(engine)
        except (EngineUnavailable, SelfTestFailed) as exc:
            logger.warning("engine %s skipped: %s", candidate, exc)
            continue
        return engine
    raise EngineUnavailable("no scrypt engine passed its self-test")
