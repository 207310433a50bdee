"""The CPUs this process may actually use: its affinity mask, capped by its cgroup's CPU quota.

A container limited to 2 CPUs on a 64-core host sees 64 cores through ``os.cpu_count()`` and
usually through its affinity mask too; only the cgroup's quota (``cpu.max`` in cgroup v2,
``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` in v1) says it gets 2 CPUs' worth of time.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cpus() -> int:
    """CPUs in this process's affinity mask, at most its cgroup quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(CGROUP_ROOT, PROC_CGROUP)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """The tightest CPU quota, in CPUs, on this process's cgroup and its ancestors; None if unlimited.

    Reads cgroup v2 (``cpu.max``) and v1 (``cpu/cpu.cfs_quota_us``); where a cgroup's own directory
    is not visible (a container without its own cgroup namespace), the mount's root stands for it.
    """
    v2_path, v1_path = own_cgroups(proc_cgroup)
    quotas = [parse_cpu_max(read(directory / "cpu.max")) for directory in lineage(cgroup_root, v2_path)]
    for directory in lineage(cgroup_root / "cpu", v1_path):
        quotas.append(parse_cfs(read(directory / "cpu.cfs_quota_us"), read(directory / "cpu.cfs_period_us")))
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def own_cgroups(proc_cgroup: Path) -> tuple[str, str]:
    """This process's cgroup v2 path and its v1 ``cpu`` controller's path (``/`` where unknown)."""
    v2 = v1 = "/"
    for line in (read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def lineage(mount: Path, path: str) -> list[Path]:
    """The mount's root, then each directory down to ``path`` below it."""
    parts = [part for part in path.split("/") if part and part not in {".", ".."}]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts) + 1)]


def parse_cpu_max(text: str | None) -> float | None:
    """``cpu.max``: ``"200000 100000"`` is 2 CPUs; ``"max 100000"`` (or nothing readable) no limit."""
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def parse_cfs(quota: str | None, period: str | None) -> float | None:
    """cgroup v1: ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``; a quota of -1 is no limit."""
    if not quota or not period:
        return None
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
