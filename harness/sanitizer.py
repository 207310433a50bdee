"""The C driver's own test program (native/tests/test_driver.c) built with AddressSanitizer and
UBSan, straight from the source tree, with the parameter limits of native/limit_macros.py.

    python -m harness.sanitizer build DIR   # DIR/test_driver

scripts/test builds it in the background (``harness.background``); tests/engines/test_native_driver.py
runs it, and builds it itself where nothing built it.
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

from harness.background import build_failed, build_output, wait_for_build

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "native"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", *SANITIZE]
OPT = "-O1"
# The ROMix kernels (still fully sanitized) at -O2: at -O1 the sanitizers leave their vector
# state on the stack and the run takes about three times as long (64 s instead of 23 s on
# two cores), almost all of it in the known answers at N = 65536.
KERNEL_OPT = "-O2"
# A kernel this CPU cannot run is still built (the program's variant table is whole) but never runs
# here: at -O0, in a second rather than the ten its vector code takes to optimise under the sanitizers.
UNRUNNABLE_OPT = "-O0"
# Each SIMD kernel file and the CPU flags (/proc/cpuinfo) its variant needs, as scrypt_platform.c
# asks __builtin_cpu_supports.
KERNEL_CPU_FLAGS = {
    "romix_sse2.c": ("sse2",),
    "romix_avx2.c": ("avx2",),
    "romix_avx512.c": ("avx512f", "avx512vl"),
}
EXECUTABLE = "test_driver"
# Set by scripts/test while it builds the driver into the directory of this status file.
BUILD_STATUS_ENV = "SCRYPT_HELPER_SANITIZER_BUILD_STATUS"
UNAVAILABLE = 3  # the exit status of a build this machine cannot make


class Unavailable(Exception):
    """This machine cannot build the program: no C compiler, or no OpenSSL headers."""


def compiler() -> str:
    for name in (os.environ.get("CC", ""), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    raise Unavailable("no C compiler (gcc or cc) on PATH")


def check_openssl(cc: str, work: Path) -> None:
    probe = work / "openssl_probe.c"
    probe.write_text("#include <openssl/evp.h>\nint main(void) { return EVP_sha256() == 0; }\n")
    proc = subprocess.run(
        [cc, "-fsyntax-only", str(probe)], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise Unavailable(f"OpenSSL headers not found (Debian: libssl-dev): {proc.stderr.strip()[:300]}")


def limit_defines() -> list[str]:
    limit_macros = runpy.run_path(str(NATIVE / "limit_macros.py"))["limit_macros"]
    return [f"-D{name}={value}" for name, value in limit_macros(ROOT)]


def cpu_flags() -> set[str] | None:
    """This CPU's feature flags from /proc/cpuinfo; None where there is none to read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return None


def optimisation(source: Path, flags: set[str] | None) -> str:
    """The -O level for ``source``: the kernels' own, or -O0 where this CPU cannot run the kernel."""
    if not source.name.startswith("romix_"):
        return OPT
    needs = KERNEL_CPU_FLAGS.get(source.name, ())
    if flags is not None and not flags.issuperset(needs):
        return UNRUNNABLE_OPT
    return KERNEL_OPT


def build(out: Path) -> Path:
    """Compile each source in parallel (the kernels take a while), then link ``out/test_driver``.
    Unavailable where this machine cannot; RuntimeError, with the compiler's output, on an error."""
    out.mkdir(parents=True, exist_ok=True)
    cc = compiler()
    check_openssl(cc, out)
    sources = [
        NATIVE / "tests" / "test_driver.c",
        *sorted(NATIVE.glob("scrypt_*.c")),
        *sorted(NATIVE.glob("romix_*.c")),
    ]
    compile_flags = [*CFLAGS, *limit_defines(), f"-I{NATIVE}"]
    flags = cpu_flags()
    jobs = []
    for source in sources:
        obj = out / f"{source.stem}.o"
        opt = optimisation(source, flags)
        command = [cc, *compile_flags, opt, "-c", str(source), "-o", str(obj)]
        job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        jobs.append((obj, job))
    errors = []
    for obj, job in jobs:
        output, _ = job.communicate(timeout=600)
        if job.returncode != 0:
            errors.append(f"{obj.name}:\n{output}")
    if errors:
        raise RuntimeError("compiling the driver test failed:\n" + "\n".join(errors))
    exe = out / EXECUTABLE
    link = [cc, *SANITIZE, OPT, *(str(obj) for obj, _ in jobs), "-lcrypto", "-o", str(exe)]
    proc = subprocess.run(link, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"linking the driver test failed:\n{proc.stdout}{proc.stderr}")
    return exe


def driver(work: Path) -> Path:
    """The program scripts/test built in the background (waited for), else one built into ``work``."""
    what = "the sanitizer driver test"
    code = wait_for_build(BUILD_STATUS_ENV, what)
    if code is None:
        return build(work)
    if code == UNAVAILABLE:
        raise Unavailable(build_output(BUILD_STATUS_ENV).strip().removeprefix("harness.sanitizer: "))
    if code != 0:
        raise build_failed(BUILD_STATUS_ENV, what)
    return Path(os.environ[BUILD_STATUS_ENV]).parent / EXECUTABLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.sanitizer", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build DIR/test_driver and print its path")
    build_command.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        print(build(args.out))
    except Unavailable as exc:
        print(f"harness.sanitizer: {exc}", file=sys.stderr)
        return UNAVAILABLE
    except RuntimeError as exc:
        print(f"harness.sanitizer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
