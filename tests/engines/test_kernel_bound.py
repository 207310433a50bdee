"""The kernel's bound accounting (``harness.kernel_bound``, docs/capacity.md) builds from the
shipped kernel's source and prints every figure it reasons from, and the bounds."""

from __future__ import annotations

import re
import shutil

import pytest

from scrypt_helper.engines.native import available_variants
from tests.measuring import run_measurement

pytestmark = pytest.mark.skipif(
    "avx2" not in available_variants() or shutil.which("objdump") is None or shutil.which("gcc") is None,
    reason="needs an AVX2 CPU, gcc and objdump",
)
FIGURES = (
    "clock_ghz",
    "mix_ops_per_cycle",
    "salsa_cycles",
    "loop1_ms",
    "loop1_compute_ms",
    "loop2_ms",
    "loop2_compute_ms",
    "stream_gbs",
    "random_block_gbs",
    "hashes_per_second",
    "alu_bound_hashes_per_second",
    "compute_and_memory_bound_hashes_per_second",
    "share_of_that_bound",
)


def test_the_accounting_counts_the_compiled_salsa_and_prints_each_bound():
    done = run_measurement("harness.kernel_bound", "--n", "1024", out=None)
    figures = dict(re.findall(r"^(\w+) ([\d,.]+)", done.stdout, re.MULTILINE))
    for name in FIGURES:
        assert float(figures[name].replace(",", "")) > 0, name
    # Per Salsa20/8 of 3 registers (6 hashes), as written in the template: 4 double rounds of
    # 8 quarter-round steps (an add, two shifts, an or and a xor each) on each register, 6
    # shuffles per double round, and the final add of 4 rows.
    counts = dict(re.findall(r"(vp\w+) (\d+)", done.stdout.split("salsa_instructions", 1)[1]))
    assert {name: int(counts[name]) for name in ("vpslld", "vpsrld", "vpor", "vpshufd")} == {
        "vpslld": 96,
        "vpsrld": 96,
        "vpor": 96,
        "vpshufd": 72,
    }
    assert int(counts["vpaddd"]) == 108
