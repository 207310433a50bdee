"""Memory against throughput for each lane count the native kernels have: one thread hashing batches
as wide as one kernel, in a fresh process each, its rate and its resident memory.

    python -m harness.lane_memory [--seconds 10] [--tiny] [--variants avx2,sse2]

A batch of k inputs runs on the kernel of k lanes (``_native._kernels`` lists a variant's) and holds
k ROMix buffers of 128·r·N bytes (64 MiB at the production parameters). A node's worker reserves
its variant's widest batch, so a node holds workers * lanes * 128·r·N bytes besides the
interpreter: this prints what each width costs and what it buys, per thread.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from harness.measurement import measurement_arguments, report_name
from scrypt_helper.bench.criteria import Figure, table
from scrypt_helper.bench.engine import TINY_PARAMS
from scrypt_helper.bench.load.child import Child
from scrypt_helper.bench.report import run_header, write_report
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.native import _native, available_variants
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.observability.process_usage import resident_bytes

MIB = 1 << 20


def measure_width(variant: str, lanes: int, params: ScryptParams, seconds: float) -> dict[str, Any]:
    """In this (fresh) process: batches of ``lanes`` inputs on ``variant`` for ``seconds``, their
    hashes per second and the resident memory before the context and at the end."""
    assert _native is not None
    before = resident_bytes()
    context = _native.Context(variant)
    inputs = [os.urandom(32) for _ in range(lanes)]
    hashed = 0
    started = time.perf_counter()
    while True:
        context.hash_batch(inputs, params.salt, params.n, params.r, params.p, params.buflen)
        hashed += lanes
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    after = resident_bytes()
    buffer_bytes = context.buffer_bytes
    context.close()
    return {
        "hashes_per_second": hashed / elapsed,
        "rss_before_mib": before / MIB,
        "rss_mib": after / MIB,
        "buffer_mib": buffer_bytes / MIB,
    }


def widths(variants: list[str]) -> list[tuple[str, str, int]]:
    """(variant, kernel, lanes) of every kernel of ``variants``, widest first."""
    assert _native is not None
    return [(variant, kernel, lanes) for variant in variants for kernel, lanes in _native._kernels(variant)]


def main(argv: list[str] | None = None) -> int:
    parser = measurement_arguments("python -m harness.lane_memory", __doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="", help="native variants, comma-separated (default: all here)")
    args = parser.parse_args(argv)
    if _native is None:
        print("harness.lane_memory: the native kernel is not built", file=sys.stderr)
        return 1
    here = available_variants()
    variants = [name for name in args.variants.split(",") if name] or list(here)
    unknown = [name for name in variants if name not in here]
    if unknown:
        print(f"harness.lane_memory: not available here: {', '.join(unknown)}", file=sys.stderr)
        return 2
    params = TINY_PARAMS if args.tiny else PICL_PARAMS
    rows = []
    for variant, kernel, lanes in widths(variants):
        child = Child(measure_width, variant, lanes, params, args.seconds).start()
        measured = child.result(args.seconds + 120)
        rows.append({"variant": variant, "kernel": kernel, "lanes": lanes, **measured})
        print(f"{kernel}: {measured['hashes_per_second']:.1f} h/s, {measured['rss_mib']:.0f} MiB", flush=True)
    report: dict[str, Any] = {**run_header(params, "native"), "seconds": args.seconds, "widths": rows}
    per_lane = params.r * params.n * 128 / MIB
    print(
        f"\none thread per kernel width, {report['cpu']}, N={params.n} r={params.r}: "
        f"{per_lane:g} MiB of ROMix buffer per lane"
    )
    figures = []
    for row in rows:
        label = f"{row['kernel']} ({row['lanes']} lanes)"
        held = row["rss_mib"] - row["rss_before_mib"]
        figures.append(
            Figure(
                f"{label}: hashes/s",
                row["hashes_per_second"],
                "/s",
                note=f"{held:.0f} MiB held ({row['buffer_mib']:.0f} MiB buffers), "
                f"{row['hashes_per_second'] / max(held, 1) * 1024:.1f} h/s per GiB held",
            )
        )
    print(table(figures))
    write_report(report, args.out, report_name("lane-memory", "native", args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
