"""The C driver's own test program (native/tests/test_driver.c), built with ASan and UBSan
(``harness.sanitizer``: scripts/test builds it while the suite starts), and run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from harness import sanitizer

ENV = {
    # Leaks are failures; any error ends the run with a report (SIGABRT for ASan).
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SUMMARY = re.compile(r"^test_driver: \d+ checks, 0 failures$", re.MULTILINE)


def _require_native() -> bool:
    return os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") not in ("", "0")


def _driver(tmp_path: Path) -> Path:
    """The built program; skipped where it cannot be built, failed where the native build is
    required (CI)."""
    try:
        return sanitizer.driver(tmp_path)
    except sanitizer.Unavailable as exc:
        if _require_native():
            pytest.fail(f"SCRYPT_HELPER_REQUIRE_NATIVE is set but {exc}")
        pytest.skip(str(exc))


@pytest.mark.timeout(900)
def test_driver_under_sanitizers(tmp_path: Path) -> None:
    exe = _driver(tmp_path)
    proc = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
        env={**os.environ, **ENV},
        cwd=tmp_path,  # where a core file would go
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"test_driver exited with {proc.returncode}:\n{output[-8000:]}"
    assert SUMMARY.search(proc.stdout), f"no summary line:\n{output[-8000:]}"
    # The portable variant runs everywhere, so at least its batches were checked.
    assert "variant portable: batches of 1..1 checked" in proc.stdout, output[-8000:]


def test_kernels_this_cpu_cannot_run_are_built_unoptimised_and_the_others_as_they_run():
    """The sanitized build spends its time optimising only the kernels this CPU will run."""
    avx512 = Path("romix_avx512.c")
    without = {"sse2", "avx2"}
    assert sanitizer.optimisation(avx512, without) == sanitizer.UNRUNNABLE_OPT
    assert sanitizer.optimisation(avx512, without | {"avx512f", "avx512vl"}) == sanitizer.KERNEL_OPT
    assert sanitizer.optimisation(Path("romix_avx2.c"), without) == sanitizer.KERNEL_OPT
    assert sanitizer.optimisation(Path("romix_portable.c"), set()) == sanitizer.KERNEL_OPT
    assert sanitizer.optimisation(Path("scrypt_driver.c"), set()) == sanitizer.OPT
    # Where the flags cannot be read, every kernel is optimised, as if it could run.
    assert sanitizer.optimisation(avx512, None) == sanitizer.KERNEL_OPT
    # Every SIMD kernel source is known, so none is built at -O0 by a missing entry.
    kernels = {path.name for path in sanitizer.NATIVE.glob("romix_*.c")} - {"romix_portable.c"}
    assert kernels == set(sanitizer.KERNEL_CPU_FLAGS)
