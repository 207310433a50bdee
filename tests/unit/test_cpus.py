"""Usable CPUs: the affinity mask, capped by a cgroup v2 or v1 CPU quota found in files standing for
/sys/fs/cgroup and /proc/self/cgroup."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrypt_helper.core.config import Settings
from scrypt_helper.runtime import cpus
from scrypt_helper.runtime.cpus import cgroup_cpu_quota, parse_cfs, parse_cpu_max, usable_cpus


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2.0),
        ("150000 100000", 1.5),
        ("50000 100000", 0.5),
        ("", None),
        (None, None),
        ("garbage", None),
        ("0 100000", None),
    ],
)
def test_cpu_max_is_read_as_cpus(text, quota):
    assert parse_cpu_max(text) == quota


def test_cfs_quota_of_minus_one_is_no_limit():
    assert parse_cfs("-1\n", "100000\n") is None
    assert parse_cfs("300000\n", "100000\n") == 3.0
    assert parse_cfs(None, "100000") is None


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def cgroup(tmp_path: Path) -> tuple[Path, Path]:
    """An empty cgroup mount and a /proc/self/cgroup naming the v2 group /kube/pod."""
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/kube/pod\n")
    return tmp_path / "cgroup", proc


def test_no_quota_files_mean_no_quota(cgroup):
    assert cgroup_cpu_quota(*cgroup) is None


def test_a_container_sees_its_quota_at_the_mount_root(cgroup):
    root, proc = cgroup
    write(root / "cpu.max", "200000 100000\n")
    assert cgroup_cpu_quota(root, proc) == 2.0


def test_the_tightest_quota_on_the_way_up_counts(cgroup):
    root, proc = cgroup
    write(root / "cpu.max", "max 100000\n")
    write(root / "kube" / "cpu.max", "150000 100000\n")
    write(root / "kube" / "pod" / "cpu.max", "400000 100000\n")
    assert cgroup_cpu_quota(root, proc) == 1.5


def test_cgroup_v1_quota_is_read(tmp_path):
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    root = tmp_path / "cgroup"
    write(root / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us", "250000\n")
    write(root / "cpu" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(root, proc) == 2.5


@pytest.fixture
def machine(monkeypatch, cgroup):
    """8 CPUs in the affinity mask; the cgroup files are the fixture's."""
    root, proc = cgroup
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(cpus, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpus, "PROC_CGROUP", proc)
    return root


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000", 8),
        ("200000 100000", 2),
        ("150000 100000", 2),
        ("50000 100000", 1),
        ("1600000 100000", 8),
    ],
)
def test_usable_cpus_round_the_quota_up_within_the_affinity_mask(machine, cpu_max, expected):
    write(machine / "cpu.max", cpu_max)
    assert usable_cpus() == expected


def test_the_default_workers_honour_the_container_quota(machine, monkeypatch):
    for name in list(cpus.os.environ):
        if name.startswith("SCRYPT_HELPER_"):
            monkeypatch.delenv(name)
    write(machine / "cpu.max", "200000 100000")
    assert Settings().workers == 2
