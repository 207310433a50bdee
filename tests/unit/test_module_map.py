"""docs/design.md's module map lists every module, and every import points where the map allows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import scrypt_helper

ROOT = "scrypt_helper"
PACKAGE_DIR = Path(scrypt_helper.__file__).parent
DESIGN = (Path(__file__).parents[2] / "docs" / "design.md").read_text()
ROW = re.compile(r"^\| `(?P<module>[\w.]+)` \| [^|]+ \| (?P<allowed>[^|]+) \|$", re.MULTILINE)


def module_map() -> dict[str, tuple[str, ...]]:
    """The map's rows: short module name -> short names it may import."""
    section = DESIGN[DESIGN.index("## Module map") :]
    rows = {}
    for match in ROW.finditer(section):
        allowed = tuple(re.findall(r"`([\w.]+)`", match["allowed"]))
        rows[match["module"]] = allowed
    return rows


def short(name: str) -> str:
    return ROOT if name == ROOT else name.removeprefix(ROOT + ".")


def package_modules() -> dict[str, Path]:
    """Every Python module of the installed package, by short name."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[short(name)] = path
    return modules


def project_imports(name: str, path: Path) -> set[str]:
    """The project modules ``path`` imports; in ``from scrypt_helper.x import y``, y when it is a module."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == ROOT}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = f"{ROOT}.{name}" if name != ROOT else ROOT
                parents = anchor.split(".")[: len(anchor.split(".")) - node.level + is_package]
                base = ".".join([*parents, *([base] if base else [])])
            if base.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(short(candidate)) else base)
    return {short(module) for module in found}


def is_module(name: str) -> bool:
    """A Python module of the package, or a compiled extension (``_native``)."""
    stem = name.replace(".", "/")
    return name in MODULES or any(PACKAGE_DIR.glob(f"{stem}.*so")) or any(PACKAGE_DIR.glob(f"{stem}.*pyd"))


def permitted(imported: str, allowed: tuple[str, ...]) -> bool:
    return imported == ROOT or any(imported == a or imported.startswith(a + ".") for a in allowed)


MAP = module_map()
MODULES = package_modules()


def test_the_map_lists_every_module_and_nothing_else():
    assert set(MODULES) == set(MAP)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_map(name):
    imported = project_imports(name, MODULES[name]) - {name}
    outside = sorted(module for module in imported if not permitted(module, MAP.get(name, ())))
    assert not outside, f"{name} imports {outside}; docs/design.md allows {MAP.get(name, ())}"


def test_the_check_sees_a_forbidden_import(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("from scrypt_helper.http.app import create_app\nfrom scrypt_helper.core import errors\n")
    assert project_imports("core.scrypt_request", stray) == {"http.app", "core.errors"}
    assert not permitted("http.app", MAP["core.scrypt_request"])


# Below ASGI: the protocol and what it calls. None of them may reach up into the app.
BELOW_ASGI = (
    "http.admission",
    "http.eager",
    "http.request_ids",
    "http.answers",
    "http.protocol",
    "http.protocol_admission",
    "http.edge",
    "http.handoff",
    "http.whole_responses",
)
UPPER = ("http.app", "http.routes", "http.middleware", "http.dependencies", "http.error_handlers")


@pytest.mark.parametrize("name", BELOW_ASGI)
def test_the_layer_below_asgi_never_imports_the_app(name):
    imported = project_imports(name, MODULES[name])
    assert not [module for module in imported if permitted(module, UPPER)]


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_judgement_of_post_knows_no_transport():
    assert not third_party_imports(MODULES["http.admission"]) & {
        "uvicorn",
        "starlette",
        "fastapi",
        "httptools",
    }
