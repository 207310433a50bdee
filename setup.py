"""Build the optional native scrypt kernel (``scrypt_helper._native``).

Everything else about the package lives in pyproject.toml; this file only
declares the C extension, which pyproject.toml cannot. The build is
optional: without a C compiler or OpenSSL's headers (Debian: libssl-dev)
``pip install .`` still succeeds, prints a warning, and the service falls
back to libsodium or hashlib. Set SCRYPT_HELPER_REQUIRE_NATIVE=1 to make a
failed build an error instead.

No global -march: one build runs on any x86-64. Each SIMD variant is
compiled with function target attributes in its own source file and chosen
at run time with __builtin_cpu_supports; on other CPUs only the portable
kernel does any work.

The C sources in native/: module.c binds the plain-C batch driver
(scrypt_driver.c, with the planner in scrypt_plan.c and the OS/CPU pieces in
scrypt_platform.c) to Python; romix_*.c are the ROMix kernels. The parameter
limits come from src/scrypt_helper/engines/param_limits.py, read (not
imported) by native/limit_macros.py and passed as SCRYPT_MAX_* macros.
"""

from __future__ import annotations

import os
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError
except ImportError:  # setuptools < 59
    from distutils.errors import (  # type: ignore[no-redef]
        CCompilerError,
        CompileError,
        LinkError,
    )
    from distutils.errors import DistutilsExecError as ExecError  # type: ignore[no-redef]
    from distutils.errors import DistutilsPlatformError as PlatformError  # type: ignore[no-redef]

NATIVE_DIR = "native"
SOURCES = [
    "module.c",
    "scrypt_driver.c",
    "scrypt_plan.c",
    "scrypt_platform.c",
    "romix_portable.c",
    "romix_sse2.c",
    "romix_avx2.c",
    "romix_avx512.c",
]
HEADERS = [
    "scrypt_driver.h",
    "scrypt_plan.h",
    "scrypt_platform.h",
    "scrypt_native.h",
    "romix_template.h",
    "simd_xmm.h",
]
# Loaded by path: setup.py must not import the package (its dependencies may be missing).
LIMITS = runpy.run_path(os.path.join(NATIVE_DIR, "limit_macros.py"))
BUILD_ERRORS = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError)
GCC_LIKE_FLAGS = ["-std=c11", "-O3", "-Wall", "-Wextra"]


def _require_native() -> bool:
    return os.environ.get("SCRYPT_HELPER_REQUIRE_NATIVE", "") not in ("", "0")


def _one_compiler_per_cpu(compile_sources):
    """``compile`` that compiles its sources in parallel, one compiler per CPU, objects in order:
    the extension is one module of eight sources, which setuptools would compile one by one."""

    def compile_parallel(sources, *args, **kwargs):
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            done = pool.map(lambda source: compile_sources([source], *args, **kwargs), sources)
            return [obj for objects in done for obj in objects]

    return compile_parallel


class OptionalBuildExt(build_ext):
    """build_ext that warns and carries on when the native kernel cannot be built."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = [*GCC_LIKE_FLAGS, *ext.extra_compile_args]
        self.compiler.compile = _one_compiler_per_cpu(self.compiler.compile)  # type: ignore[method-assign]
        super().build_extensions()

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self._skip(exc, ext)

    def _skip(self, exc: BaseException, ext: Extension | None = None) -> None:
        if _require_native():
            raise exc
        name = ext.name if ext is not None else "scrypt_helper._native"
        bar = "*" * 76
        sys.stderr.write(
            f"\n{bar}\nWARNING: could not build the optional C extension {name}: {exc}\n"
            "It needs a C compiler and OpenSSL's libcrypto headers (Debian/Ubuntu: "
            "apt-get install build-essential libssl-dev).\n"
            "scrypt-helper is installed without it and will use the libsodium or hashlib engine.\n"
            f"{bar}\n\n"
        )


setup(
    ext_modules=[
        Extension(
            "scrypt_helper._native",
            sources=[f"{NATIVE_DIR}/{name}" for name in SOURCES],
            depends=[*(f"{NATIVE_DIR}/{name}" for name in HEADERS), str(LIMITS["LIMITS_FILE"])],
            include_dirs=[NATIVE_DIR],
            define_macros=LIMITS["limit_macros"]("."),
            libraries=["crypto"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
