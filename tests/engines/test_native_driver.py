"""The C driver's own test program (native/tests/test_driver.c), built with ASan and UBSan, and run.

It needs no Python extension: it compiles the driver, planner, platform and ROMix kernel
sources straight from the source tree with the parameter limits of param_limits.py.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "native"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", *SANITIZE]
OPT = "-O1"
# The ROMix kernels (still fully sanitized) at -O2: at -O1 the sanitizers leave their vector
# state on the stack and the run takes about three times as long (64 s instead of 23 s on
# two cores), almost all of it in the known answers at N = 65536.
KERNEL_OPT = "-O2"
ENV = {
    # Leaks are failures; any error ends the run with a report (SIGABRT for ASan).
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SUMMARY = re.compile(r"^test_driver: \d+ checks, 0 failures$", re.MULTILINE)


def _require_native() -> bool:
    return os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") not in ("", "0")


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail where the native build is required (CI)."""
    if _require_native():
        pytest.fail(f"SCRYPT_HELPER_REQUIRE_NATIVE is set but {reason}")
    pytest.skip(reason)


def _compiler() -> str:
    for name in (os.environ.get("CC", ""), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    _unavailable("no C compiler (gcc or cc) on PATH")


def _check_openssl(cc: str, tmp_path: Path) -> None:
    probe = tmp_path / "openssl_probe.c"
    probe.write_text("#include <openssl/evp.h>\nint main(void) { return EVP_sha256() == 0; }\n")
    proc = subprocess.run(
        [cc, "-fsyntax-only", str(probe)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        _unavailable(f"OpenSSL headers not found (Debian: libssl-dev): {proc.stderr.strip()[:300]}")


def _limit_defines() -> list[str]:
    limit_macros = runpy.run_path(str(NATIVE / "limit_macros.py"))["limit_macros"]
    return [f"-D{name}={value}" for name, value in limit_macros(ROOT)]


def _build(cc: str, tmp_path: Path) -> Path:
    """Compile each source in parallel (the kernels take a while), then link."""
    sources = [
        NATIVE / "tests" / "test_driver.c",
        *sorted(NATIVE.glob("scrypt_*.c")),
        *sorted(NATIVE.glob("romix_*.c")),
    ]
    compile_flags = [*CFLAGS, *_limit_defines(), f"-I{NATIVE}"]
    jobs = []
    for source in sources:
        obj = tmp_path / f"{source.stem}.o"
        opt = KERNEL_OPT if source.name.startswith("romix_") else OPT
        command = [cc, *compile_flags, opt, "-c", str(source), "-o", str(obj)]
        job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        jobs.append((obj, job))
    errors = []
    for obj, job in jobs:
        output, _ = job.communicate(timeout=600)
        if job.returncode != 0:
            errors.append(f"{obj.name}:\n{output}")
    assert not errors, "compiling the driver test failed:\n" + "\n".join(errors)
    exe = tmp_path / "test_driver"
    link = [cc, *SANITIZE, OPT, *(str(obj) for obj, _ in jobs), "-lcrypto", "-o", str(exe)]
    proc = subprocess.run(link, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"linking the driver test failed:\n{proc.stdout}{proc.stderr}"
    return exe


@pytest.mark.timeout(900)
def test_driver_under_sanitizers(tmp_path: Path) -> None:
    cc = _compiler()
    _check_openssl(cc, tmp_path)
    exe = _build(cc, tmp_path)
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
