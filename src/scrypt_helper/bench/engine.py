"""Raw engine throughput: hashes per second on T threads, one context per thread; and each native
variant against py-scrypt, the 2013 helper's engine, alternated."""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass

from scrypt_helper.engines import ENGINE_NAMES, Engine, EngineUnavailable, ScryptParams, create_engine
from scrypt_helper.engines.registry import self_test
from scrypt_helper.engines.vectors import PICL_PARAMS

# N=1024: a quick run that shows the shape of the figures, not production speed.
TINY_PARAMS = ScryptParams(salt=b"bench", n=1024, r=8, p=1, buflen=32)


@dataclass(frozen=True, slots=True)
class EngineFigure:
    """Hashes per second of one engine on some threads, and one lone hash's latency."""

    engine: str
    lanes: int
    threads: int
    hashes_per_second: float
    single_hash_ms: float


def measure_engine(engine: Engine, params: ScryptParams, threads: int, seconds: float) -> EngineFigure:
    """Hashes per second of full batches on ``threads`` threads, and a lone hash's latency."""
    return EngineFigure(
        engine=engine.name,
        lanes=engine.lanes,
        threads=threads,
        hashes_per_second=hashes_per_second(engine, params, threads, seconds),
        single_hash_ms=single_hash_ms(engine, params),
    )


def hashes_per_second(engine: Engine, params: ScryptParams, threads: int, seconds: float) -> float:
    """Run full batches on ``threads`` threads for about ``seconds``; finished hashes per second."""
    done = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(index: int) -> None:
        ctx = engine.open_context()
        try:
            inputs = [os.urandom(32) for _ in range(ctx.lanes)]
            ctx.hash_batch(params, inputs)  # allocate before the clock starts
            start.wait()
            while time.perf_counter() < stop_at[0]:
                ctx.hash_batch(params, inputs)
                done[index] += len(inputs)
        finally:
            ctx.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in pool:
        thread.join()
    return sum(done) / (time.perf_counter() - began)


def single_hash_ms(engine: Engine, params: ScryptParams, repeats: int = 3) -> float:
    """Best-of-``repeats`` latency of one hash on a warm context."""
    ctx = engine.open_context()
    try:
        ctx.hash_batch(params, [b"warm-up"])
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            ctx.hash_batch(params, [os.urandom(32)])
            best = min(best, time.perf_counter() - started)
        return best * 1000
    finally:
        ctx.close()


def available_engines() -> list[Engine]:
    """Every engine that constructs here, in ENGINE_NAMES order."""
    engines = []
    for name in ENGINE_NAMES:
        try:
            engines.append(create_engine(name))
        except EngineUnavailable:
            continue
    return engines


def list_engines(seconds: float, threads: list[int], params: ScryptParams = PICL_PARAMS) -> None:
    """Print each available engine: self-test, hashes/s on each thread count, ratio to libsodium."""
    header = "".join(f"{f'{t} thr h/s':>12}{'x sodium':>9}" for t in threads)
    print(f"{'engine':<18}{'lanes':>6}{'self-test':>11}{header}{'1 hash ms':>11}")
    rows = []
    for engine in available_engines():
        try:
            self_test(engine)
            verdict = "pass"
        except Exception as exc:
            verdict = f"FAIL ({exc})"
        figures = [measure_engine(engine, params, threads=t, seconds=seconds) for t in threads]
        rows.append((engine, verdict, figures))
    base = {f.threads: f.hashes_per_second for e, _, fs in rows if e.name == "libsodium" for f in fs}
    for engine, verdict, figures in rows:
        cells = "".join(f"{f.hashes_per_second:>12.1f}{_ratio(f, base):>9.2f}" for f in figures)
        print(f"{engine.name:<18}{engine.lanes:>6}{verdict:>11}{cells}{figures[0].single_hash_ms:>11.1f}")


def _ratio(figure: EngineFigure, base: dict[int, float]) -> float:
    return figure.hashes_per_second / base[figure.threads] if figure.threads in base else float("nan")


REFERENCE = "py-scrypt"


def reference_rate(params: ScryptParams, seconds: float) -> float:
    """Hashes per second of py-scrypt (the ``scrypt`` package: Tarsnap's code, which the 2013
    helper ran) on this thread; EngineUnavailable where it is not installed."""
    try:
        import scrypt  # type: ignore[import-untyped]  # the bench extra
    except ImportError:
        raise EngineUnavailable(
            f"{REFERENCE} is not installed (pip install scrypt, or the bench extra)"
        ) from None
    data = os.urandom(32)
    scrypt.hash(data, params.salt, params.n, params.r, params.p, params.buflen)  # warm-up
    done = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        scrypt.hash(data, params.salt, params.n, params.r, params.p, params.buflen)
        done += 1
    return done / elapsed


def compare_with_reference(params: ScryptParams, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Each native variant that runs here against py-scrypt, one thread each, the reference measured
    right after each variant, ``rounds`` times over (the machine's speed drifts); each pair printed
    as it is measured, then each variant's median ratio. Returns the ratios by variant."""
    engines = [e for e in available_engines() if e.name.startswith("native-") and e.name != "native-portable"]
    ratios: dict[str, list[float]] = {engine.name: [] for engine in engines}
    for round_ in range(1, rounds + 1):
        for engine in engines:
            mine = hashes_per_second(engine, params, threads=1, seconds=seconds)
            theirs = reference_rate(params, seconds)
            ratios[engine.name].append(mine / theirs)
            print(
                f"round {round_}: {engine.name} {mine:.1f} h/s ({engine.lanes} lanes), "
                f"{REFERENCE} {theirs:.2f} h/s: {mine / theirs:.2f}x",
                flush=True,
            )
    for name, each in ratios.items():
        listed = ", ".join(f"{ratio:.2f}" for ratio in each)
        print(f"{name} against {REFERENCE}: median {statistics.median(each):.2f}x ({listed})")
    return ratios
