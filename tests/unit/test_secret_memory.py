"""The start-up check of --lock-memory: RLIMIT_MEMLOCK, or CAP_IPC_LOCK, which lifts it."""

from __future__ import annotations

import resource

import pytest

from scrypt_helper.core import secret_memory


@pytest.fixture
def memlock(monkeypatch: pytest.MonkeyPatch):
    """Set the soft RLIMIT_MEMLOCK and CAP_IPC_LOCK that the check sees."""

    def set_(soft: int, capable: bool) -> None:
        monkeypatch.setattr(secret_memory.resource, "getrlimit", lambda which: (soft, soft))
        monkeypatch.setattr(secret_memory, "can_lock_without_limit", lambda: capable)

    return set_


def test_within_the_limit_is_fine(memlock):
    memlock(8 << 20, capable=False)
    assert secret_memory.memlock_shortfall(8 << 20) is None


def test_past_the_limit_without_cap_ipc_lock_names_both_figures_and_the_fixes(memlock):
    memlock(8 << 20, capable=False)
    problem = secret_memory.memlock_shortfall((8 << 20) + 1)
    assert problem is not None
    assert f"locking {(8 << 20) + 1} bytes (8.0 MiB)" in problem
    assert f"it is {8 << 20} bytes" in problem
    assert "ulimit -l" in problem
    assert "CAP_IPC_LOCK" in problem


def test_cap_ipc_lock_lifts_the_limit(memlock):
    memlock(64 << 10, capable=True)
    assert secret_memory.memlock_shortfall(1 << 40) is None


def test_an_unlimited_limit_is_fine(memlock):
    memlock(resource.RLIM_INFINITY, capable=False)
    assert secret_memory.memlock_shortfall(1 << 40) is None


def test_cap_ipc_lock_is_read_from_the_effective_set(monkeypatch: pytest.MonkeyPatch, tmp_path):
    if not secret_memory._LINUX:
        pytest.skip("Linux capabilities")
    status = tmp_path / "status"
    monkeypatch.setattr(secret_memory, "Path", lambda path: status)
    status.write_text("Name:\tx\nCapPrm:\t0000000000004000\nCapEff:\t0000000000000000\n")
    assert secret_memory.can_lock_without_limit() is False
    status.write_text("Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t0000000000004000\n")
    assert secret_memory.can_lock_without_limit() is True
