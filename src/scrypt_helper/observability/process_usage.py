"""CPU time and memory of processes, as psutil reads them: the one reader behind the node's own
process metrics, the local servers and every benchmark."""

from __future__ import annotations

import os

import psutil

_own: tuple[int, psutil.Process] | None = None


def process(pid: int | None = None) -> psutil.Process:
    """The process ``pid`` (None: this one, looked up once per process, forks included)."""
    global _own
    if pid is not None:
        return psutil.Process(pid)
    if _own is None or _own[0] != os.getpid():
        _own = (os.getpid(), psutil.Process())
    return _own[1]


def cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time a process has used (None: this one)."""
    times = process(pid).cpu_times()
    return times.user + times.system


def children_cpu_seconds() -> float:
    """User and system CPU time of this process's children that have ended and been waited for."""
    times = process().cpu_times()
    return times.children_user + times.children_system


def tree_cpu_seconds(pid: int, *, main_threads: bool = False) -> float:
    """CPU time of a process and its live descendants; with ``main_threads``, of their main threads
    only: a node's event loops without its hash workers. A member that exits meanwhile counts 0."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in members:
        try:
            if main_threads:
                total += sum(t.user_time + t.system_time for t in member.threads() if t.id == member.pid)
            else:
                times = member.cpu_times()
                total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def resident_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (None: this one)."""
    return int(process(pid).memory_info().rss)


def open_fds(pid: int | None = None) -> int:
    """Open file descriptors of a process (None: this one)."""
    return int(process(pid).num_fds())
