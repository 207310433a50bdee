"""Compile to bytecode what the tests' processes import: the service's locked dependencies and the
test runners', with everything they need.

Where ``PYTHONDONTWRITEBYTECODE`` is set, a module without a ``.pyc`` is compiled again by every
process that imports it, and the tests start hundreds of nodes. Compiling the whole environment
instead costs more than it saves: most of it (cfn-lint's schemas, sympy, matplotlib) is imported
once or never.

    python -m harness.bytecode requirements/runtime.txt pytest locust ...
"""

from __future__ import annotations

import compileall
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def closure(names: Iterable[str]) -> set[str]:
    """The installed distributions ``names`` and everything they require, by canonical name."""
    found: set[str] = set()
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        found.add(name)
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def top_levels(names: Iterable[str]) -> set[Path]:
    """The installed top-level packages and modules of the distributions ``names``."""
    paths = set()
    for name in names:
        distribution = metadata.distribution(name)
        for file in distribution.files or ():
            if file.suffix == ".py":
                paths.add(Path(str(distribution.locate_file(file.parts[0]))))
    return paths


def compile_all(paths: Iterable[Path]) -> bool:
    """Compile every module under ``paths``, on every core; False if one failed."""
    ok = True
    for path in sorted(paths):
        if path.is_dir():
            ok &= bool(compileall.compile_dir(path, quiet=1, workers=0))
        elif path.exists():
            ok &= bool(compileall.compile_file(path, quiet=1))
    return ok


def main(arguments: list[str]) -> int:
    names: list[str] = []
    for argument in arguments:
        path = Path(argument)
        names += PIN.findall(path.read_text()) if path.suffix == ".txt" else [argument]
    return 0 if compile_all(top_levels(closure(names))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
