"""What bounds the AVX2 kernel here: its Salsa20/8 instructions counted in the compiled code, the
core's throughput at that mix, ROMix's two loops with and without their memory, and the memory's
rates for V's access patterns; the bounds they give, beside the kernel's measured rate.

    python -m harness.kernel_bound [--n 65536]

Builds native/tests/kernel_bound.c (which includes the shipped romix_avx2.c) with the compiler
the package is built with, counts the vector instructions of its lone Salsa20/8 loop in objdump's
disassembly, runs it on one thread and prints the accounting (docs/capacity.md, "The kernel's
bound"). x86 with AVX2 only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from harness.sanitizer import compiler

NATIVE = Path(__file__).resolve().parents[1] / "native"
SOURCE = NATIVE / "tests" / "kernel_bound.c"
LANES = 6  # the avx2x6 kernel: 3 registers of 2 hashes
ALU = ("vpaddd", "vpslld", "vpsrld", "vpor", "vpxor", "vpshufd")
FIGURE = re.compile(r"^(\w+) ([\d.]+) ", re.MULTILINE)


def build(work: Path) -> Path:
    exe = work / "kernel_bound"
    command = [compiler(), "-O3", "-std=gnu11", f"-I{NATIVE}", str(SOURCE), "-o", str(exe)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    return exe


def salsa_instructions(exe: Path) -> Counter[str]:
    """Vector instructions of the lone Salsa20/8 loop (``salsa_seconds``): one Salsa20/8 of 3
    registers per iteration, so the counts are per 6 hashes."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise RuntimeError("objdump is not installed (binutils)")
    text = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(exe)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    body = text.split("<salsa_seconds>:", 1)[1].split("\n\n", 1)[0]
    return Counter(match for match in re.findall(r"\t(v\w+)\s", body))


def accounting(figures: dict[str, float], counts: Counter[str], n: int, r: int = 8) -> dict[str, float]:
    """The bounds, in hashes per second of one thread, and the kernel's share of the tightest. The
    program's rates and times are per 6 hashes at ``n``; a hash here is one at N = 65536."""
    salsas_per_hash = 2 * 65536 * 2 * r
    alu_per_hash = sum(counts[name] for name in ALU) / LANES
    cycles_per_hash = alu_per_hash * salsas_per_hash / figures["mix_ops_per_cycle"]
    hashes = LANES * n / 65536  # what the timed loops computed
    v_bytes = LANES * n * 128 * r  # V of all lanes: written by loop 1, read by loop 2
    compute = (figures["loop1_compute_ms"] + figures["loop2_compute_ms"]) / 1e3
    loop1 = max(figures["loop1_compute_ms"] / 1e3, v_bytes / (figures["stream_gbs"] * 1e9))
    loop2 = max(figures["loop2_compute_ms"] / 1e3, v_bytes / (figures["random_block_gbs"] * 1e9))
    combined = hashes / (loop1 + loop2)
    memory_per_hash = 65536 * 128 * r * 2  # V written once and read once
    return {
        "alu_ops_per_hash_per_salsa": alu_per_hash,
        "cycles_per_hash_at_alu_bound": cycles_per_hash,
        "alu_bound_hashes_per_second": figures["clock_ghz"] * 1e9 / cycles_per_hash,
        "compute_only_hashes_per_second": hashes / compute,
        "memory_bytes_per_hash": memory_per_hash,
        "bandwidth_at_measured_rate_gbs": memory_per_hash * figures["hashes_per_second"] / 1e9,
        "compute_and_memory_bound_hashes_per_second": combined,
        "share_of_that_bound": figures["hashes_per_second"] / combined,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.kernel_bound", description=__doc__)
    parser.add_argument("--n", type=int, default=65536, help="scrypt N (a power of two; r = 8)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scrypt-helper-bound-") as work:
        exe = build(Path(work))
        counts = salsa_instructions(exe)
        done = subprocess.run(
            [str(exe), str(args.n)], capture_output=True, text=True, timeout=600, check=False
        )
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        return done.returncode
    figures = {name: float(value) for name, value in FIGURE.findall(done.stdout)}
    print(done.stdout.rstrip())
    print(
        "salsa_instructions "
        + ", ".join(f"{name} {counts[name]}" for name in (*ALU, "vmovdqa"))
        + " (6 hashes)"
    )
    for name, value in accounting(figures, counts, args.n).items():
        print(f"{name} {value:,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
