"""Capacity planning arithmetic and the shipped price table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scrypt_helper.bench.capacity import (
    InstanceType,
    capacity_report,
    load_instances,
    ops_per_core_from_report,
    plan,
)

EIGHT = InstanceType("eight", vcpus=8, memory_gib=16, usd_per_hour=0.5)


def test_nodes_cover_the_peak_at_the_utilization_plus_a_spare():
    # 8 cores x 10/s = 80/s per node; 1000/s at 80% busy needs 16 nodes, plus one spare.
    result = plan(EIGHT, 1000, 10, utilization=0.8, lanes=8)
    assert (result.nodes, result.ops_per_node) == (17, 80)
    assert result.monthly_usd == pytest.approx(17 * 0.5 * 730)
    assert result.fits_memory


def test_at_least_two_nodes_for_two_zones():
    assert plan(EIGHT, 1, 1000, utilization=0.8, lanes=8).nodes == 2


def test_memory_bound_is_checked():
    small = InstanceType("small", vcpus=16, memory_gib=4, usd_per_hour=0.1)
    assert not plan(small, 100, 10, utilization=0.8, lanes=8).fits_memory  # 16 x 8 x 64 MiB = 8 GiB


def test_shipped_table_loads_and_report_lists_every_type(tmp_path):
    instances = load_instances()
    assert len(instances) >= 4
    assert all(i.vcpus > 0 and i.usd_per_hour > 0 for i in instances)
    report = capacity_report([1000, 100000], 40.0, instances=instances)
    assert "peak 1,000 logins/s" in report
    assert "peak 100,000 logins/s" in report
    for instance in instances:
        assert instance.name in report
    custom = tmp_path / "prices.csv"
    custom.write_text("# ours\nname,vcpus,memory_gib,usd_per_hour\nbox,4,8,0.2\n")
    assert load_instances(custom) == [InstanceType("box", 4, 8.0, 0.2)]


def test_ops_per_core_comes_from_the_best_http_row(tmp_path):
    report = tmp_path / "bench.json"
    report.write_text(json.dumps({"workers": 2, "http": [{"ok_per_second": 50.0}, {"ok_per_second": 80.0}]}))
    assert ops_per_core_from_report(report) == 40.0


def test_capacity_command_prints_the_plan():
    done = subprocess.run(
        [sys.executable, "-m", "scrypt_helper", "capacity", "--ops-per-core", "40", "--peak", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "peak 1,000 logins/s" in done.stdout
    assert "c7i.2xlarge" in done.stdout
