"""The hashed pins in requirements/ satisfy pyproject.toml: what is tested and shipped is what is declared."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from harness.image import client_version

ROOT = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = ("build.txt", "runtime.txt", "dev.txt")
# The platform the locks are for: CPython 3.11 on Linux (the image's and the tests' interpreter).
ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
}
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: tuple[str, ...]


def applies(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate({**ENVIRONMENT, "extra": extra})


def read_lock(name: str) -> dict[NormalizedName, Pin]:
    """``name==version [; marker]`` lines with their ``--hash`` options, for the lock's platform."""
    pins: dict[NormalizedName, Pin] = {}
    for line in (ROOT / "requirements" / name).read_text().replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text, _, _ = line.partition(" --hash=")
        requirement = Requirement(text.strip())
        if not applies(requirement):
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{name}: {requirement.name} is not pinned with =="
        key = canonicalize_name(requirement.name)
        assert key not in pins, f"{name}: {requirement.name} is pinned twice"
        pins[key] = Pin(Version(specifier.version), tuple(HASH.findall(line)))
    return pins


PINS = {name: read_lock(name) for name in LOCKS}
# This repository's own client distribution: installed from clients/python beside the project, not locked.
CLIENT_DIR = ROOT / "clients" / "python"
CLIENT = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
DECLARED = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
RUNTIME = [r for r in DECLARED if canonicalize_name(r.name) != CLIENT["name"]]
EXTRAS = [
    Requirement(text)
    for extra in ("dev", "bench")
    for text in PYPROJECT["project"]["optional-dependencies"][extra]
]
BUILD = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]


def assert_pinned(requirement: Requirement, lock: str) -> None:
    pin = PINS[lock].get(canonicalize_name(requirement.name))
    assert pin is not None, f"{requirement.name} is not pinned in requirements/{lock}; run scripts/lock"
    assert requirement.specifier.contains(pin.version, prereleases=True), (
        f"{requirement.name}=={pin.version} in requirements/{lock} is outside {requirement}; run scripts/lock"
    )


@pytest.mark.parametrize("requirement", RUNTIME, ids=str)
def test_each_runtime_dependency_is_pinned_within_its_range(requirement):
    assert_pinned(requirement, "runtime.txt")


@pytest.mark.parametrize("requirement", [r for r in RUNTIME if r.extras], ids=str)
def test_the_extras_of_runtime_dependencies_are_pinned_too(requirement):
    pin = PINS["runtime.txt"][canonicalize_name(requirement.name)]
    installed = metadata.version(requirement.name)
    if Version(installed) != pin.version:
        pytest.skip(f"{requirement.name} {installed} is installed, not the locked {pin.version}")
    for text in metadata.requires(requirement.name) or ():
        needed = Requirement(text)
        if needed.marker is not None and any(applies(needed, extra) for extra in requirement.extras):
            assert_pinned(needed, "runtime.txt")


@pytest.mark.parametrize("requirement", EXTRAS, ids=str)
def test_each_dev_and_bench_dependency_is_pinned_within_its_range(requirement):
    assert_pinned(requirement, "dev.txt")


@pytest.mark.parametrize("requirement", BUILD, ids=str)
def test_each_build_requirement_is_pinned_within_its_range(requirement):
    assert_pinned(requirement, "build.txt")


@pytest.mark.parametrize("lock", ["runtime.txt", "build.txt"])
def test_the_tests_install_the_same_versions_as_the_image_and_the_build(lock):
    dev = PINS["dev.txt"]
    for name, pin in PINS[lock].items():
        if lock == "build.txt" and name not in dev:
            continue  # pip, setuptools and wheel: only builds need them
        assert name in dev, f"{name} is in requirements/{lock} but not in requirements/dev.txt"
        assert dev[name].version == pin.version, (
            f"{name}: {pin.version} in requirements/{lock}, {dev[name].version} in requirements/dev.txt"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash_and_the_file_names_its_refresh_command(lock):
    assert PINS[lock], f"requirements/{lock} pins nothing"
    for name, pin in PINS[lock].items():
        assert pin.hashes, f"{name} has no sha256 hash in requirements/{lock}"
    header = (ROOT / "requirements" / lock).read_text().splitlines()[:3]
    assert any("scripts/lock" in line for line in header if line.startswith("#")), lock


def test_the_client_dependency_is_the_distribution_in_this_repository_and_its_own_are_pinned():
    (requirement,) = [r for r in DECLARED if canonicalize_name(r.name) == CLIENT["name"]]
    version = client_version()  # ValueError where clients/python declares none
    assert requirement.specifier.contains(version), f"{requirement} does not admit clients/python {version}"
    for text in CLIENT["dependencies"]:
        assert_pinned(Requirement(text), "runtime.txt")
    assert CLIENT["name"] not in PINS["runtime.txt"], "the client is locked as if it came from the index"


def test_httptools_is_a_direct_dependency_that_refuses_folded_transfer_encoding():
    # Releases before 0.9 read a folded "Transfer-Encoding:" line as chunked (request smuggling).
    (httptools,) = [r for r in RUNTIME if canonicalize_name(r.name) == "httptools"]
    for old in ("0.5.0", "0.6.4", "0.8.0"):
        assert not httptools.specifier.contains(old, prereleases=True), f"httptools {old} is admitted"
