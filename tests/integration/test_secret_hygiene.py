"""A served node leaves no password-equivalent material where the operating system could write it out.

Real ``scrypt-helper serve`` processes: not dumpable whatever core_pattern says, hash buffers
locked in RAM with ``--lock-memory`` (read back from /proc/PID/status), and a start-up that stops
where they could not be locked.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.native import available_variants
from tests.conftest import SMALL, allowed_json, local_node

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses prctl")

# 128 KiB per lane: two workers' buffers fit the usual 8 MiB RLIMIT_MEMLOCK.
TINY = ScryptParams(salt=b"scrypt-helper-tests", n=128, r=8, p=1, buflen=32)
PR_CAPBSET_DROP = 24
CAP_IPC_LOCK = 14
needs_native = pytest.mark.skipif(not available_variants(), reason="the native kernel is not built")


def locked_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmLck")


def node_details(url: str) -> dict[str, object]:
    details: dict[str, object] = http_get(f"{url}/__heartbeat__", timeout=10).json()["details"]["node"]
    return details


def without_memlock(limit: int) -> None:
    """In the child before exec: RLIMIT_MEMLOCK at ``limit``, and (as root) no CAP_IPC_LOCK after exec."""
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop CAP_IPC_LOCK")


def serve(*flags: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``serve`` that must stop at start-up (it would bind port 0 on loopback if it did not)."""
    return subprocess.run(
        [sys.executable, "-m", "scrypt_helper", "serve", "--host", "127.0.0.1", "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=None if limit is None else lambda: without_memlock(limit),
    )


def test_a_served_node_is_not_dumpable():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL)) as node:
        details = node_details(node.url)
        owner = Path(f"/proc/{node.process.pid}/status").stat().st_uid
        assert http_post(node.url, json=body(), timeout=30).status_code == 200
    assert details["dumpable"] is False
    if os.geteuid() != 0:
        # The kernel hands a non-dumpable process's /proc files to root.
        assert owner == 0


def body(params: ScryptParams = SMALL) -> dict[str, object]:
    return {
        "input": "00" * 32,
        "salt": params.salt.decode(),
        "N": params.n,
        "r": params.r,
        "p": params.p,
        "buflen": params.buflen,
    }


@needs_native
def test_lock_memory_locks_every_workers_buffers_and_the_default_locks_none(server):
    from scrypt_helper import _native

    variant = available_variants()[0]
    per_worker = _native.footprint(variant, TINY.n, TINY.r, TINY.p)
    with local_node(
        engine=f"native-{variant}", lock_memory="true", workers=2, allowed_params=allowed_json(TINY)
    ) as node:
        assert locked_bytes(node.process.pid) == 2 * per_worker
        assert http_post(node.url, json=body(TINY), timeout=30).status_code == 200
        details = node_details(node.url)
    assert (details["memory_locked"], details["wipes_hash_state"]) == (True, True)
    assert locked_bytes(server.process.pid) == 0
    assert node_details(server.url)["memory_locked"] is False


@needs_native
def test_lock_memory_stops_start_up_when_rlimit_memlock_is_too_low():
    done = serve("--lock-memory", "--workers", "2", "--allowed-params", allowed_json(SMALL), limit=4096)
    assert done.returncode == 1, done.stderr
    assert "--lock-memory: 2 workers lock up to" in done.stderr
    assert "RLIMIT_MEMLOCK of at least that, but it is 4096 bytes" in done.stderr


@needs_native
def test_lock_memory_serves_within_exactly_what_the_workers_lock(monkeypatch):
    from scrypt_helper import _native

    variant = available_variants()[0]
    limit = 2 * _native.footprint(variant, TINY.n, TINY.r, TINY.p)
    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] < limit:
        pytest.skip(f"the hard RLIMIT_MEMLOCK is below {limit} bytes")
    monkeypatch.setattr(
        subprocess, "Popen", functools.partial(subprocess.Popen, preexec_fn=lambda: without_memlock(limit))
    )
    with local_node(
        engine=f"native-{variant}", lock_memory="true", workers=2, allowed_params=allowed_json(TINY)
    ) as node:
        assert locked_bytes(node.process.pid) == limit
        assert http_post(node.url, json=body(TINY), timeout=30).status_code == 200


def test_lock_memory_with_an_engine_that_cannot_lock_stops_start_up():
    done = serve("--engine", "hashlib", "--lock-memory")
    assert done.returncode == 2, done.stderr  # two flags that cannot go together: a usage error
    assert "--lock-memory: the hashlib engine cannot lock its buffers" in done.stderr
