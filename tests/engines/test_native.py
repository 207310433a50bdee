"""The native multi-buffer scrypt kernel, every variant this CPU supports, against hashlib."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import threading

import pytest

from scrypt_helper.engines import vectors
from scrypt_helper.engines.base import EngineUnavailable, ScryptParams
from scrypt_helper.engines.registry import create_engine, self_test

if os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") in ("", "0"):
    _native = pytest.importorskip("scrypt_helper._native", reason="the native kernel is not built")
else:
    from scrypt_helper import _native

from scrypt_helper.engines import native as native_engine
from scrypt_helper.engines.native import KNOWN_VARIANTS, NativeEngine

SUPPORTED = _native.variants()
SALT = b"identity.mozilla.com/picl/v1/scrypt"


@pytest.fixture(params=KNOWN_VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    if request.param not in SUPPORTED:
        pytest.skip(f"this CPU or build lacks the {request.param} variant (has {', '.join(SUPPORTED)})")
    return request.param


@pytest.fixture
def ctx(variant: str):
    context = _native.Context(variant)
    yield context
    context.close()


def reference(inputs: list[bytes], salt: bytes, n: int, r: int, p: int, buflen: int) -> list[bytes]:
    maxmem = 128 * r * n + 128 * r * (p + 2) + (1 << 20)
    return [hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=buflen, maxmem=maxmem) for data in inputs]


def random_inputs(count: int) -> list[bytes]:
    return [os.urandom(random.randint(1, 256)) for _ in range(count)]


def check(ctx, inputs: list[bytes], salt: bytes, n: int, r: int, p: int, buflen: int) -> None:
    got = ctx.hash_batch(inputs, salt, n, r, p, buflen)
    want = reference(inputs, salt, n, r, p, buflen)
    bad = [lane for lane, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"lanes {bad} differ from hashlib (N={n} r={r} p={p} buflen={buflen})"


def test_module_api() -> None:
    assert SUPPORTED
    assert SUPPORTED[-1] == "portable"
    assert set(SUPPORTED) <= set(KNOWN_VARIANTS)
    assert list(SUPPORTED) == [v for v in KNOWN_VARIANTS if v in SUPPORTED]
    expected_lanes = {"avx512": 8, "avx2": 6, "sse2": 4, "portable": 1}
    for name in SUPPORTED:
        assert _native.lanes(name) == expected_lanes[name]
    with pytest.raises(ValueError, match="unknown"):
        _native.lanes("neon")
    with pytest.raises(ValueError, match="unknown"):
        _native.Context("neon")
    with pytest.raises(TypeError):
        _native.Context(8)


def test_context_attributes(ctx, variant: str) -> None:
    assert ctx.lanes == _native.lanes(variant)
    assert ctx.variant == variant
    assert ctx.buffer_bytes == 0
    assert ctx.buffer_is_zero()
    assert not ctx.closed


def test_every_kernel_is_planned(variant: str) -> None:
    """Batches of 1..lanes inputs with p=1 or 2 use every kernel of the variant (so the tests cover them)."""
    lanes = _native.lanes(variant)
    used = {kernel for jobs in range(1, 2 * lanes + 1) for kernel, _ in _native._plan(variant, jobs)}
    assert used == {name for name, _ in _native._kernels(variant)}
    for jobs in range(1, 3 * lanes):
        plan = _native._plan(variant, jobs)
        assert sum(count for _, count in plan) == jobs
    assert _native._plan(variant, 1) == ((_native._kernels(variant)[-1][0], 1),)
    assert _native._plan(variant, lanes) == ((_native._kernels(variant)[0][0], lanes),)


def test_every_batch_size_matches_hashlib(ctx) -> None:
    for size in range(1, ctx.lanes + 1):
        check(ctx, random_inputs(size), os.urandom(16), 1024, 8, 1, 32)


def test_p2_every_batch_size_matches_hashlib(ctx) -> None:
    for size in range(1, ctx.lanes + 1):
        check(ctx, random_inputs(size), SALT, 64, 2, 2, 64)


@pytest.mark.parametrize("answer", vectors.RFC7914, ids=["N16", "N1024p16", "N16384"])
def test_rfc7914_vectors(ctx, answer: vectors.KnownAnswer) -> None:
    params = answer.params
    size = random.randint(1, ctx.lanes)
    position = random.randrange(size)
    inputs = random_inputs(size)
    inputs[position] = answer.password
    got = ctx.hash_batch(inputs, params.salt, params.n, params.r, params.p, params.buflen)
    assert got[position] == answer.output
    others = [i for i in range(size) if i != position]
    if params.n * params.p <= 1024:  # keep hashlib's share of the run time small
        want = reference(
            [inputs[i] for i in others], params.salt, params.n, params.r, params.p, params.buflen
        )
        assert [got[i] for i in others] == want
    else:
        assert len({got[i] for i in others} | {answer.output}) == size


@pytest.mark.parametrize(
    ("salt", "n", "r", "p", "buflen"),
    [
        (SALT, 256, 1, 1, 32),
        (SALT, 128, 3, 1, 32),
        (SALT, 64, 4, 2, 32),
        (SALT, 2, 1, 1, 32),
        (SALT, 2, 8, 3, 16),
        (SALT, 512, 2, 1, 1),
        (SALT, 512, 2, 1, 1024),
        (b"a different salt \x00\xff", 256, 8, 1, 32),
        (b"", 256, 8, 1, 32),
        (os.urandom(300), 32, 32, 1, 100),
    ],
)
def test_other_parameters(ctx, salt: bytes, n: int, r: int, p: int, buflen: int) -> None:
    check(ctx, random_inputs(ctx.lanes), salt, n, r, p, buflen)
    check(ctx, random_inputs(1), salt, n, r, p, buflen)


def test_empty_and_long_inputs(ctx) -> None:
    inputs = [b"", b"x" * 5000, bytearray(b"bytearray"), memoryview(b"memoryview")][: ctx.lanes]
    got = ctx.hash_batch(inputs, SALT, 16, 1, 1, 32)
    assert got == reference([bytes(i) for i in inputs], SALT, 16, 1, 1, 32)


def test_keyword_arguments(ctx) -> None:
    got = ctx.hash_batch(inputs=[b"pw"], salt=b"s", N=16, r=1, p=1, buflen=8)
    assert got == reference([b"pw"], b"s", 16, 1, 1, 8)


def test_picl_vectors(ctx) -> None:
    params = vectors.PICL_PARAMS
    answers = list(vectors.PICL)
    for start in range(0, len(answers), ctx.lanes):
        batch = answers[start : start + ctx.lanes]
        got = ctx.hash_batch([a.password for a in batch], params.salt, params.n, params.r, params.p, 32)
        assert got == [a.output for a in batch]


def test_wipe_and_buffer_is_zero(ctx) -> None:
    assert ctx.buffer_is_zero()
    ctx.hash_batch(random_inputs(ctx.lanes), SALT, 256, 8, 1, 32)
    assert ctx.buffer_bytes > 0
    assert not ctx.buffer_is_zero()
    ctx.wipe()
    assert ctx.buffer_is_zero()
    ctx.wipe()
    assert ctx.buffer_is_zero()
    # The buffer stays allocated and usable after a wipe.
    check(ctx, random_inputs(ctx.lanes), SALT, 256, 8, 1, 32)


def test_buffer_is_reused(ctx) -> None:
    n, r = 1024, 4
    ctx.hash_batch(random_inputs(ctx.lanes), SALT, n, r, 1, 32)
    size = ctx.buffer_bytes
    assert size == ctx.lanes * 128 * r * n
    for _ in range(3):
        ctx.hash_batch(random_inputs(ctx.lanes), SALT, n, r, 1, 32)
        assert ctx.buffer_bytes == size
    # Smaller batches and smaller parameters fit in the buffer already there.
    check(ctx, random_inputs(1), SALT, 512, r, 1, 32)
    assert ctx.buffer_bytes == size


def test_buffer_grows_and_shrinks(ctx) -> None:
    ctx.hash_batch(random_inputs(ctx.lanes), SALT, 256, 8, 1, 32)
    assert ctx.buffer_bytes == ctx.lanes * 128 * 8 * 256
    check(ctx, random_inputs(ctx.lanes), SALT, 1024, 8, 1, 32)
    assert ctx.buffer_bytes == ctx.lanes * 128 * 8 * 1024
    # Far more than a full batch of small parameters needs: given back.
    check(ctx, random_inputs(ctx.lanes), SALT, 16, 1, 1, 32)
    assert ctx.buffer_bytes == ctx.lanes * 128 * 1 * 16


def test_close_then_use_raises(ctx) -> None:
    ctx.hash_batch([b"pw"], SALT, 16, 1, 1, 32)
    ctx.close()
    assert ctx.closed
    assert ctx.buffer_bytes == 0
    ctx.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        ctx.hash_batch([b"pw"], SALT, 16, 1, 1, 32)
    with pytest.raises(ValueError, match="closed"):
        ctx.wipe()
    with pytest.raises(ValueError, match="closed"):
        ctx.buffer_is_zero()


@pytest.mark.parametrize(
    ("n", "r", "p", "buflen"),
    [
        (3, 1, 1, 32),
        (1, 1, 1, 32),
        (0, 1, 1, 32),
        (-16, 1, 1, 32),
        (1 << 21, 1, 1, 32),
        (1 << 70, 1, 1, 32),
        (16, 0, 1, 32),
        (16, 33, 1, 32),
        (16, 1, 0, 32),
        (16, 1, 17, 32),
        (16, 1, 1, 0),
        (16, 1, 1, 1025),
    ],
)
def test_bad_values_raise_value_error(ctx, n: int, r: int, p: int, buflen: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError message
        ctx.hash_batch([b"pw"], SALT, n, r, p, buflen)


def test_bad_batch_sizes_raise_value_error(ctx) -> None:
    with pytest.raises(ValueError, match="inputs"):
        ctx.hash_batch([], SALT, 16, 1, 1, 32)
    with pytest.raises(ValueError, match="inputs"):
        ctx.hash_batch([b"pw"] * (ctx.lanes + 1), SALT, 16, 1, 1, 32)


@pytest.mark.parametrize(
    "args",
    [
        (None, SALT, 16, 1, 1, 32),
        (["text"], SALT, 16, 1, 1, 32),
        ([1], SALT, 16, 1, 1, 32),
        (b"pw", SALT, 16, 1, 1, 32),
        ([b"pw"], "salt", 16, 1, 1, 32),
        ([b"pw"], None, 16, 1, 1, 32),
        ([b"pw"], SALT, "16", 1, 1, 32),
        ([b"pw"], SALT, 16.0, 1, 1, 32),
        ([b"pw"], SALT, 16, None, 1, 32),
    ],
)
def test_wrong_types_raise_type_error(ctx, args: tuple) -> None:
    with pytest.raises(TypeError):
        ctx.hash_batch(*args)
    # The context is still usable after a rejected call.
    check(ctx, [b"pw"], SALT, 16, 1, 1, 32)


def test_allocation_failure_is_memory_error(variant: str) -> None:
    script = textwrap.dedent(
        f"""
        import resource
        from scrypt_helper import _native
        ctx = _native.Context({variant!r})
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        try:
            ctx.hash_batch([b"pw"] * ctx.lanes, b"salt", 1 << 20, 32, 1, 32)
        except MemoryError as exc:
            print("MemoryError:", exc)
        else:
            raise SystemExit("no MemoryError")
        assert ctx.buffer_bytes == 0
        print(ctx.hash_batch([b"pw"], b"salt", 16, 1, 1, 8)[0].hex())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("MemoryError:")
    assert bytes.fromhex(lines[1]) == reference([b"pw"], b"salt", 16, 1, 1, 8)[0]


def test_two_threads_two_contexts(variant: str) -> None:
    lanes = _native.lanes(variant)
    batches = [random_inputs(lanes) for _ in range(2)]
    results: list[list[bytes] | BaseException | None] = [None, None]

    def work(i: int) -> None:
        context = _native.Context(variant)
        try:
            results[i] = context.hash_batch(batches[i], SALT, 2048, 8, 1, 32)
        except BaseException as exc:  # reported below
            results[i] = exc
        finally:
            context.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert results[i] == reference(batches[i], SALT, 2048, 8, 1, 32)


def test_one_context_two_threads_is_refused(ctx) -> None:
    """A second thread entering a busy context gets RuntimeError; the running batch is unharmed."""
    inputs = random_inputs(1)
    result: list[bytes] = []

    def work() -> None:
        while True:  # the main thread's own short calls may hold the context for a moment
            try:
                result.extend(ctx.hash_batch(inputs, SALT, 1 << 16, 8, 1, 32))
            except RuntimeError:
                continue
            return

    worker = threading.Thread(target=work)
    refusals: list[str] = []
    worker.start()
    while worker.is_alive():
        try:
            ctx.hash_batch([b"pw"], SALT, 16, 1, 1, 32)
        except RuntimeError as exc:
            refusals.append(str(exc))
        worker.join(0.002)
    worker.join()
    assert refusals
    assert all("busy" in message for message in refusals)
    assert result == [hashlib.scrypt(inputs[0], salt=SALT, n=1 << 16, r=8, p=1, dklen=32, maxmem=1 << 27)]


# --- the Engine wrapper and the registry ---------------------------------------------------


def test_native_engine_picks_best_variant() -> None:
    engine = NativeEngine()
    assert engine.name == "native"
    assert engine.variant == SUPPORTED[0]
    assert engine.lanes == _native.lanes(SUPPORTED[0])
    assert create_engine("native").variant == SUPPORTED[0]


def test_engine_hash_batch_and_wipe(variant: str) -> None:
    engine = create_engine(f"native-{variant}")
    assert engine.name == f"native-{variant}"
    assert engine.variant == variant
    params = ScryptParams(salt=SALT, n=512, r=8, p=1, buflen=32)
    context = engine.open_context()
    try:
        assert context.lanes == engine.lanes
        inputs = random_inputs(engine.lanes)
        assert context.hash_batch(params, inputs) == reference(inputs, SALT, 512, 8, 1, 32)
        context.wipe()
        assert context.buffer_bytes == engine.lanes * params.romix_bytes
    finally:
        context.close()
    assert engine.hash(params, b"pw") == reference([b"pw"], SALT, 512, 8, 1, 32)[0]


def test_registry_self_test_passes(variant: str) -> None:
    self_test(create_engine(f"native-{variant}"))


def test_missing_variant_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineUnavailable, match="unknown"):
        NativeEngine("neon")
    monkeypatch.setattr(native_engine, "available_variants", lambda: ("portable",))
    for name in KNOWN_VARIANTS[:-1]:
        with pytest.raises(EngineUnavailable, match="not available"):
            create_engine(f"native-{name}")


def test_unbuilt_extension_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_engine, "_native", None)
    monkeypatch.setattr(native_engine, "_IMPORT_ERROR", ImportError("no module"))
    with pytest.raises(EngineUnavailable, match="not built"):
        create_engine("native")


def test_reserve_allocates_a_full_batch_and_leaves_it_wiped():
    engine = NativeEngine()
    ctx = engine.open_context()
    try:
        params = ScryptParams(salt=b"s", n=1024, r=8, p=1, buflen=32)
        ctx.reserve(params)
        assert ctx.buffer_bytes >= engine.lanes * params.romix_bytes
        assert ctx._ctx.buffer_is_zero()
        held = ctx.buffer_bytes
        ctx.hash_batch(params, [b"x"] * engine.lanes)
        assert ctx.buffer_bytes == held
    finally:
        ctx.close()
