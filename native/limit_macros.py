"""C macros for the parameter limits of src/scrypt_helper/engines/param_limits.py.

setup.py compiles the extension with them and tests/engines/test_native_driver.py
compiles the C driver test with them. The file is parsed, not imported, so that
the build needs nothing but the source tree. Load this helper by path (runpy):
its directory is not a package.
"""

from __future__ import annotations

import ast
from pathlib import Path

#: Where the limits live, relative to the repository root.
LIMITS_FILE = Path("src/scrypt_helper/engines/param_limits.py")
#: Prefix of each macro: MAX_R becomes SCRYPT_MAX_R.
MACRO_PREFIX = "SCRYPT_"


def limit_macros(root: str | Path = ".") -> list[tuple[str, str]]:
    """``(macro, value)`` for each ``NAME = int`` line of the limits file under ``root``."""
    path = Path(root) / LIMITS_FILE
    macros: list[tuple[str, str]] = []
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) is int
        ):
            macros.append((MACRO_PREFIX + node.targets[0].id, str(node.value.value)))
            continue
        raise ValueError(f"{path}:{node.lineno}: expected only NAME = int lines")
    return macros
