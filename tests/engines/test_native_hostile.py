"""The C extension called directly with hostile arguments: a clean Python exception, never a crash.

Every call runs in a child process, so that a crash (a signal, an abort) shows as the failure
of the call that caused it instead of taking pytest down; after a crash the child is started
again with the calls that remain. The child's address space is capped, so that a batch larger
than the machine allows fails with MemoryError instead of waking the OOM killer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import NamedTuple

import pytest

from scrypt_helper.engines.param_limits import MAX_BUFLEN, MAX_LOG2_N, MAX_P, MAX_R

if os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") in ("", "0"):
    _native = pytest.importorskip("scrypt_helper._native", reason="the native kernel is not built")
else:
    from scrypt_helper import _native

# The widest variant, and the one-lane portable one (lanes + 1 is then 2).
VARIANTS = tuple(dict.fromkeys((_native.variants()[0], "portable")))
# Address space the child may add to what it maps at start: far below a full batch at the
# largest parameters (8 lanes x 4 GiB), far above everything else here.
HEADROOM = 1 << 30


class Call(NamedTuple):
    """A Python expression run in the child, and the exception it must raise ("ok": none)."""

    expression: str
    outcome: str


GOOD = "[b'pw'], b'salt', 16, 1, 1, 32"


def batch(inputs: str = "[b'pw']", salt: str = "b'salt'", n: str = "16", r: str = "1", p: str = "1") -> str:
    return f"ctx.hash_batch({inputs}, {salt}, {n}, {r}, {p}, 32)"


def buflen(value: str) -> str:
    return f"ctx.hash_batch([b'pw'], b'salt', 16, 1, 1, {value})"


CALLS: dict[str, Call] = {
    # N: beyond 64 bits, negative, zero, not a power of two, past the limit, wrong types.
    "N 2**63": Call(batch(n="2**63"), "ValueError"),
    "N 2**64": Call(batch(n="2**64"), "ValueError"),
    "N 2**200": Call(batch(n="2**200"), "ValueError"),
    "N -1": Call(batch(n="-1"), "ValueError"),
    "N -2**70": Call(batch(n="-2**70"), "ValueError"),
    "N 0": Call(batch(n="0"), "ValueError"),
    "N 1": Call(batch(n="1"), "ValueError"),
    "N 3": Call(batch(n="3"), "ValueError"),
    "N 1000": Call(batch(n="1000"), "ValueError"),
    "N past the limit": Call(batch(n=f"2**{MAX_LOG2_N + 1}"), "ValueError"),
    "N 2**32": Call(batch(n="2**32"), "ValueError"),
    "N True": Call(batch(n="True"), "TypeError"),
    "N 16.0": Call(batch(n="16.0"), "TypeError"),
    "N '16'": Call(batch(n="'16'"), "TypeError"),
    "N None": Call(batch(n="None"), "TypeError"),
    # r
    "r 2**63": Call(batch(r="2**63"), "ValueError"),
    "r 2**64 + 1": Call(batch(r="2**64 + 1"), "ValueError"),
    "r -1": Call(batch(r="-1"), "ValueError"),
    "r 0": Call(batch(r="0"), "ValueError"),
    "r past the limit": Call(batch(r=str(MAX_R + 1)), "ValueError"),
    "r 2**31": Call(batch(r="2**31"), "ValueError"),
    "r True": Call(batch(r="True"), "TypeError"),
    "r 1.0": Call(batch(r="1.0"), "TypeError"),
    "r b'1'": Call(batch(r="b'1'"), "TypeError"),
    # p
    "p 2**63": Call(batch(p="2**63"), "ValueError"),
    "p -1": Call(batch(p="-1"), "ValueError"),
    "p 0": Call(batch(p="0"), "ValueError"),
    "p past the limit": Call(batch(p=str(MAX_P + 1)), "ValueError"),
    "p True": Call(batch(p="True"), "TypeError"),
    "p 1.5": Call(batch(p="1.5"), "TypeError"),
    # buflen
    "buflen 2**63": Call(buflen("2**63"), "ValueError"),
    "buflen 2**100": Call(buflen("2**100"), "ValueError"),
    "buflen -1": Call(buflen("-1"), "ValueError"),
    "buflen 0": Call(buflen("0"), "ValueError"),
    "buflen past the limit": Call(buflen(str(MAX_BUFLEN + 1)), "ValueError"),
    "buflen 2**32": Call(buflen("2**32"), "ValueError"),
    "buflen False": Call(buflen("False"), "TypeError"),
    "buflen None": Call(buflen("None"), "TypeError"),
    # Lane counts.
    "no inputs": Call(batch(inputs="[]"), "ValueError"),
    "lanes + 1 inputs": Call(batch(inputs="[b'pw'] * (ctx.lanes + 1)"), "ValueError"),
    "a million inputs": Call(batch(inputs="[b'pw'] * 1_000_000"), "ValueError"),
    "a full batch": Call(batch(inputs="[b'pw'] * ctx.lanes"), "ok"),
    "inputs from a generator": Call(batch(inputs="(b'pw' for _ in range(ctx.lanes))"), "ok"),
    # Empty and oversized inputs and salts.
    "an empty input": Call(batch(inputs="[b'']"), "ok"),
    "a 1 MiB input": Call(batch(inputs="[bytes(1 << 20)]"), "ok"),
    "1 MiB inputs in every lane": Call(batch(inputs="[os.urandom(1 << 20)] * ctx.lanes"), "ok"),
    "an empty salt": Call(batch(salt="b''"), "ok"),
    "a 1 MiB salt": Call(batch(salt="bytes(1 << 20)"), "ok"),
    "bytearray, memoryview and array inputs": Call(
        batch(inputs="[bytearray(b'a'), memoryview(b'b'), array.array('I', [1, 2])][: ctx.lanes]"), "ok"
    ),
    # Wrong types.
    "inputs a single bytes": Call(batch(inputs="b'pw'"), "TypeError"),
    "inputs a single bytearray": Call(batch(inputs="bytearray(b'pw')"), "TypeError"),
    "inputs a str": Call(batch(inputs="'pw'"), "TypeError"),
    "inputs None": Call(batch(inputs="None"), "TypeError"),
    "inputs an int": Call(batch(inputs="5"), "TypeError"),
    "an input str": Call(batch(inputs="['pw']"), "TypeError"),
    "an input None": Call(batch(inputs="[None]"), "TypeError"),
    "an input list of ints": Call(batch(inputs="[[1, 2, 3]]"), "TypeError"),
    "an input int": Call(batch(inputs="[7]"), "TypeError"),
    "a strided memoryview input": Call(batch(inputs="[memoryview(b'abcdef')[::2]]"), "TypeError"),
    "a salt str": Call(batch(salt="'salt'"), "TypeError"),
    "a salt None": Call(batch(salt="None"), "TypeError"),
    "a salt list of ints": Call(batch(salt="[1, 2]"), "TypeError"),
    "a strided memoryview salt": Call(batch(salt="memoryview(b'abcdef')[::2]"), "TypeError"),
    "a missing argument": Call("ctx.hash_batch([b'pw'], b'salt', 16, 1, 1)", "TypeError"),
    "an extra argument": Call(f"ctx.hash_batch({GOOD}, 0)", "TypeError"),
    "an unknown keyword": Call(f"ctx.hash_batch({GOOD}, dklen=32)", "TypeError"),
    # The largest allowed batch needs more memory than the child may map: MemoryError.
    "the largest allowed batch": Call(
        f"ctx.hash_batch([b'pw'] * ctx.lanes, b'salt', 2**{MAX_LOG2_N}, {MAX_R}, {MAX_P}, {MAX_BUFLEN})",
        "MemoryError",
    ),
    "the context still works after MemoryError": Call(
        "memory_error_then("
        f"lambda: ctx.hash_batch([b'pw'] * ctx.lanes, b's', 2**{MAX_LOG2_N}, {MAX_R}, 1, 32), "
        "lambda: must(ctx.hash_batch([b'pw'], b'salt', 16, 1, 1, 32) == [SMALL_ANSWER]))",
        "ok",
    ),
    "a full batch's answers are right": Call(
        "must(ctx.hash_batch([b'pw'] * ctx.lanes, b'salt', 16, 1, 1, 32) == [SMALL_ANSWER] * ctx.lanes)", "ok"
    ),
    # A closed context.
    "hash_batch on a closed context": Call(f"closed.hash_batch({GOOD})", "ValueError"),
    "wipe on a closed context": Call("closed.wipe()", "ValueError"),
    "buffer_is_zero on a closed context": Call("closed.buffer_is_zero()", "ValueError"),
    "close twice": Call("closed.close()", "ok"),
    # Contexts and module functions.
    "Context(None)": Call("_native.Context(None)", "TypeError"),
    "Context('')": Call("_native.Context('')", "ValueError"),
    "Context('neon')": Call("_native.Context('neon')", "ValueError"),
    "Context(variant + NUL + junk)": Call("_native.Context(VARIANT + '\\x00junk')", "ValueError"),
    "Context(a 1 MB name)": Call("_native.Context('a' * 1_000_000)", "ValueError"),
    "Context(lock_memory='yes')": Call("_native.Context(VARIANT, lock_memory='yes')", "TypeError"),
    "Context(lock_memory=1)": Call("_native.Context(VARIANT, lock_memory=1)", "TypeError"),
    "Context(lock_memory positional)": Call("_native.Context(VARIANT, True)", "TypeError"),
    "lanes(b'avx2')": Call("_native.lanes(b'avx2')", "TypeError"),
    "lanes(variant + NUL)": Call("_native.lanes(VARIANT + '\\x00')", "ValueError"),
    "footprint N 2**64": Call("_native.footprint(VARIANT, 2**64, 8, 1)", "ValueError"),
    "footprint r -1": Call("_native.footprint(VARIANT, 16, -1, 1)", "ValueError"),
    "footprint p True": Call("_native.footprint(VARIANT, 16, 1, True)", "TypeError"),
    "footprint of the largest set": Call(
        f"_native.footprint(VARIANT, 2**{MAX_LOG2_N}, {MAX_R}, {MAX_P})", "ok"
    ),
    "_plan 0 jobs": Call("_native._plan(VARIANT, 0)", "ValueError"),
    "_plan -1 jobs": Call("_native._plan(VARIANT, -1)", "ValueError"),
    "_plan 2**70 jobs": Call("_native._plan(VARIANT, 2**70)", "OverflowError"),
    "_plan '3' jobs": Call("_native._plan(VARIANT, '3')", "TypeError"),
    "_kernels(None)": Call("_native._kernels(None)", "TypeError"),
}

CHILD = r"""
import array, hashlib, json, os, resource, sys
from scrypt_helper import _native


def must(condition):
    if not condition:
        raise AssertionError("wrong answer")


def memory_error_then(big, good):
    try:
        big()
    except MemoryError:
        return good()
    raise AssertionError("no MemoryError")


SMALL_ANSWER = hashlib.scrypt(b"pw", salt=b"salt", n=16, r=1, p=1, dklen=32)


VARIANT, HEADROOM = sys.argv[1], int(sys.argv[2])
with open("/proc/self/statm") as statm:
    mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (mapped + HEADROOM, mapped + HEADROOM))
for ident, expression in json.load(sys.stdin):
    print(json.dumps(["start", ident]), flush=True)
    scope = {**globals(), "VARIANT": VARIANT}
    scope["ctx"] = _native.Context(VARIANT)
    scope["closed"] = _native.Context(VARIANT)
    scope["closed"].close()
    try:
        eval(expression, scope)
        outcome = "ok"
    except Exception as exc:
        outcome = type(exc).__name__
    scope["ctx"].close()
    print(json.dumps(["done", ident, outcome]), flush=True)
"""


def run_calls(variant: str) -> dict[str, str]:
    """Each call's outcome: an exception name, "ok", or how the child died while running it."""
    outcomes: dict[str, str] = {}
    pending = list(CALLS)
    while pending:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, variant, str(HEADROOM)],
            input=json.dumps([(ident, CALLS[ident].expression) for ident in pending]),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        started = None
        for line in proc.stdout.splitlines():
            event = json.loads(line)
            if event[0] == "start":
                started = event[1]
            else:
                outcomes[event[1]] = event[2]
                started = None
        remaining = [ident for ident in pending if ident not in outcomes]
        if not remaining or (started is None and proc.returncode == 0):
            break
        # The call running when the child died, or (dying between calls) the next one.
        culprit = started or remaining[0]
        status = proc.returncode
        death = signal.Signals(-status).name if status < 0 else f"exit status {status}"
        outcomes[culprit] = f"crash ({death}): {proc.stderr.strip()[-500:]}"
        pending = pending[pending.index(culprit) + 1 :]
    return outcomes


@pytest.fixture(scope="module", params=VARIANTS)
def outcomes(request: pytest.FixtureRequest) -> dict[str, str]:
    return run_calls(request.param)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("ident", list(CALLS))
def test_a_hostile_call_raises_cleanly(outcomes: dict[str, str], ident: str) -> None:
    assert outcomes.get(ident) == CALLS[ident].outcome, f"{CALLS[ident].expression}: {outcomes.get(ident)}"


def test_a_crash_is_caught_and_the_other_calls_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {
        "before": Call("1", "ok"),
        "crash": Call("os.kill(os.getpid(), 11)", "ok"),
        "after": Call("int('x')", "ValueError"),
    }
    monkeypatch.setattr(sys.modules[__name__], "CALLS", calls)
    seen = run_calls(VARIANTS[-1])
    assert seen["before"] == "ok"
    assert seen["crash"].startswith("crash (SIGSEGV)")
    assert seen["after"] == "ValueError"
