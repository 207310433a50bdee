"""Where the native kernel's hash buffers live: out of core dumps, locked in RAM on request.

The kernel's own view is read back from /proc/self: VmLck (bytes locked) and each mapping's
VmFlags ("dd": left out of core dumps). Other engines cannot do either, and say so.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scrypt_helper.engines.base import EngineUnavailable, ScryptParams
from scrypt_helper.engines.hashlib_engine import HashlibEngine
from scrypt_helper.engines.libsodium import LibsodiumEngine

if os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") in ("", "0"):
    _native = pytest.importorskip("scrypt_helper._native", reason="the native kernel is not built")
else:
    from scrypt_helper import _native

from scrypt_helper.engines.native import NativeEngine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")

VARIANT = _native.variants()[0]
# 128 KiB per lane: a full batch of the widest variant stays below 8 MiB, the usual RLIMIT_MEMLOCK.
SMALL = ScryptParams(salt=b"salt", n=128, r=8, p=1, buflen=32)
PR_CAPBSET_DROP = 24
CAP_IPC_LOCK = 14


def locked_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmLck in /proc/self/status")


def undumped_bytes() -> int:
    """Bytes of this process's mappings marked to be left out of core dumps."""
    total = size = 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line.startswith("Size:"):
            size = int(line.split()[1]) * 1024
        elif line.startswith("VmFlags:") and "dd" in line.split()[1:]:
            total += size
    return total


def full_batch(ctx, params: ScryptParams = SMALL) -> None:
    ctx.hash_batch([b"pw"] * ctx.lanes, params.salt, params.n, params.r, params.p, params.buflen)


def test_locked_buffers_are_locked_while_held_and_released_on_close() -> None:
    footprint = _native.footprint(VARIANT, SMALL.n, SMALL.r, SMALL.p)
    before = locked_bytes()
    ctx = _native.Context(VARIANT, lock_memory=True)
    assert ctx.lock_memory
    assert locked_bytes() == before  # nothing is allocated before the first batch
    full_batch(ctx)
    assert locked_bytes() - before == footprint
    ctx.wipe()
    assert locked_bytes() - before == footprint  # wiped, still held and locked
    ctx.close()
    assert locked_bytes() == before


def test_unlocked_buffers_lock_nothing() -> None:
    before = locked_bytes()
    ctx = _native.Context(VARIANT)
    assert not ctx.lock_memory
    full_batch(ctx)
    assert locked_bytes() == before
    ctx.close()


def test_the_buffers_are_left_out_of_core_dumps() -> None:
    # 1 MiB per lane: the ROMix buffer alone is at least that.
    params = ScryptParams(salt=b"salt", n=1024, r=8, p=1, buflen=32)
    before = undumped_bytes()
    ctx = _native.Context(VARIANT)
    full_batch(ctx, params)
    assert undumped_bytes() - before >= ctx.buffer_bytes + 128 * params.r * ctx.lanes
    ctx.close()
    assert undumped_bytes() == before


def drop_ipc_lock_and_memlock() -> None:
    """In the child before exec: RLIMIT_MEMLOCK 0, and (as root) no CAP_IPC_LOCK after exec."""
    import ctypes

    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop CAP_IPC_LOCK")


def test_a_lock_the_kernel_refuses_is_memory_error_and_holds_nothing() -> None:
    code = textwrap.dedent(
        f"""
        import hashlib
        from scrypt_helper import _native
        ctx = _native.Context({VARIANT!r}, lock_memory=True)
        try:
            ctx.hash_batch([b"pw"], b"salt", 16, 1, 1, 32)
        except MemoryError as exc:
            assert "RLIMIT_MEMLOCK" in str(exc), exc
        else:
            raise SystemExit("the lock was not refused")
        assert ctx.buffer_bytes == 0
        ctx.close()
        unlocked = _native.Context({VARIANT!r})
        want = hashlib.scrypt(b"pw", salt=b"salt", n=16, r=1, p=1, dklen=32)
        assert unlocked.hash_batch([b"pw"], b"salt", 16, 1, 1, 32) == [want]
        print("refused")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=drop_ipc_lock_and_memlock,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


def test_the_native_engine_wipes_and_locks_on_request() -> None:
    engine = NativeEngine(VARIANT)
    assert engine.wipes_state
    assert not engine.locks_memory
    bigger = ScryptParams(salt=b"salt", n=256, r=8, p=2, buflen=32)
    assert engine.lock_buffers([SMALL, bigger]) == _native.footprint(VARIANT, 256, 8, 2)
    assert engine.locks_memory
    ctx = engine.open_context()
    before = locked_bytes()
    ctx.hash_batch(SMALL, [b"pw"] * ctx.lanes)
    assert locked_bytes() > before
    ctx.close()


@pytest.mark.parametrize("engine_type", [LibsodiumEngine, HashlibEngine])
def test_library_engines_cannot_wipe_or_lock_and_say_so(engine_type: type) -> None:
    engine = engine_type()
    assert not engine.wipes_state
    with pytest.raises(EngineUnavailable, match="cannot lock its buffers"):
        engine.lock_buffers([SMALL])
    assert not engine.locks_memory
