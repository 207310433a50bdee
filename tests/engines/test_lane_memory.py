"""What each kernel width costs in memory and buys in throughput (``harness.lane_memory``,
docs/capacity.md): every kernel of a variant measured in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scrypt_helper.engines.native import _native, available_variants
from tests.measuring import ROOT, run_measurement

pytestmark = pytest.mark.skipif(_native is None, reason="the native kernel is not built")


def test_every_kernel_width_reports_its_rate_and_the_buffers_it_holds(tmp_path):
    variant = available_variants()[0]
    done = run_measurement(
        "harness.lane_memory", "--tiny", "--seconds", "0.05", "--variants", variant, out=tmp_path
    )
    rows = json.loads(next(tmp_path.glob("lane-memory-*.json")).read_text())["widths"]
    assert [(row["kernel"], row["lanes"]) for row in rows] == [tuple(k) for k in _native._kernels(variant)]
    for row in rows:
        assert row["hashes_per_second"] > 0
        # N=1024, r=8: 1 MiB of ROMix buffer per lane, held by the batch's own process.
        assert row["buffer_mib"] == pytest.approx(row["lanes"], rel=0.05)
        assert row["rss_mib"] > row["rss_before_mib"]
    assert "MiB held" in done.stdout


def test_a_variant_this_cpu_lacks_is_refused_with_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness.lane_memory", "--variants", "no-such", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "not available here: no-such" in done.stderr
    assert "Traceback" not in done.stderr
