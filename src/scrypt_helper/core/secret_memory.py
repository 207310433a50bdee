"""Keep password-equivalent material where the operating system cannot write it out.

A serving node forbids core dumps twice over: ``RLIMIT_CORE`` 0 stops dumps to files, and a
process that is not dumpable (``prctl(PR_SET_DUMPABLE, 0)``) is not dumped even where
``core_pattern`` pipes dumps to a helper, which ignores ``RLIMIT_CORE``. Before it locks its hash
buffers in RAM (``--lock-memory``), a node checks that the kernel will let it.
"""

from __future__ import annotations

import ctypes
import functools
import resource
import sys
from pathlib import Path

# <linux/prctl.h> and <linux/capability.h>.
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
CAP_IPC_LOCK = 14

_LINUX = sys.platform.startswith("linux")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int = 0) -> int:
    zero = ctypes.c_ulong(0)
    result = int(_libc().prctl(option, ctypes.c_ulong(value), zero, zero, zero))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}) failed")
    return result


def forbid_core_dumps() -> None:
    """No core dump of this process, whatever ``core_pattern`` says.

    Not being dumpable also keeps other processes of the same user from attaching a debugger
    or reading its memory through ``/proc``.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _LINUX:
        _prctl(PR_SET_DUMPABLE, 0)


def dumpable() -> bool | None:
    """Whether the kernel would dump this process (``PR_GET_DUMPABLE``); None off Linux."""
    return bool(_prctl(PR_GET_DUMPABLE)) if _LINUX else None


def can_lock_without_limit() -> bool:
    """Whether this process holds CAP_IPC_LOCK, which lifts RLIMIT_MEMLOCK for it (Linux)."""
    if not _LINUX:
        return False
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_IPC_LOCK & 1)
    return False


def memlock_shortfall(need: int) -> str | None:
    """Why this process may not lock ``need`` bytes in RAM, or None when it may."""
    if can_lock_without_limit():
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return None
    return (
        f"locking {need} bytes ({need / (1 << 20):.1f} MiB) needs RLIMIT_MEMLOCK of at least that, "
        f"but it is {soft} bytes and the process lacks CAP_IPC_LOCK: raise the limit "
        "(ulimit -l, docker run --ulimit memlock=-1, systemd LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK"
    )
