"""The client distribution (clients/python) from its own wheel, in a venv holding it and httpx alone."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import SMALL

ROOT = Path(__file__).parents[2]
LOCK = ROOT / "requirements" / "runtime.txt"
BIN = Path(sys.executable).parent
K1 = "f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd"
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation")
K2 = "5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5"


def client_wheel(into: Path) -> Path:
    """The wheel scripts/test built in dist/, else one built now from clients/python."""
    built = sorted((ROOT / "dist").glob("scrypt_helper_client-*.whl"))
    if os.environ.get("SCRYPT_HELPER_TEST_INSTALL") == "wheel" and built:
        return built[-1]
    subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(into), str(ROOT / "clients" / "python")],
        check=True,
    )
    return next(into.glob("scrypt_helper_client-*.whl"))


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


def locked_pins(names: set[str]) -> str:
    """The blocks of requirements/runtime.txt (pin and hashes) for ``names``."""
    blocks = re.split(r"\n(?=[a-z0-9])", LOCK.read_text())
    chosen = [b for b in blocks if canonicalize_name(re.split(r"[=;\s]", b, maxsplit=1)[0]) in names]
    assert len(chosen) == len(names), f"not every one of {sorted(names)} is locked"
    return "\n".join(
        line for block in chosen for line in block.splitlines() if not line.lstrip().startswith("#")
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return client_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def client_only(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv's python with the client wheel and httpx's locked closure, and nothing else."""
    where = tmp_path_factory.mktemp("client-only")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True)
    python = where / "venv" / "bin" / "python"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements = where / "requirements.txt"
    requirements.write_text(
        locked_pins(closure(["httpx"]) - {"scrypt-helper-client"})
        + f"\nscrypt-helper-client @ {wheel.as_uri()} --hash=sha256:{digest}\n"
    )
    # uv (scripts/test installs it, pinned) reuses the cache the suite's own install filled.
    installer = [str(BIN / "uv"), "pip", "install", "--quiet", "--python", str(python)]
    if not (BIN / "uv").exists():
        installer = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run([*installer, "--no-deps", "--require-hashes", "-r", str(requirements)], check=True)
    return python


def run_in(python: Path, code: str) -> dict:
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_wheel_declares_httpx_alone_and_ships_its_types_and_licence(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = archive.read(meta).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in headers.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert [canonicalize_name(Requirement(r).name) for r in requires] == ["httpx"]
    assert "scrypt_helper_client/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "License-Expression: MPL-2.0" in headers
    assert not [n for n in names if n.startswith("scrypt_helper/")]


def test_the_client_alone_imports_without_the_server_and_computes_the_picl_vector_itself(client_only):
    found = run_in(
        client_only,
        "import importlib.util, json, sys\n"
        "from scrypt_helper_client import Client\n"
        f"out = Client(None).hash(bytes.fromhex({K1!r})).hex()\n"
        "mods = sorted({m.split('.')[0] for m in sys.modules})\n"
        "print(json.dumps({'out': out, 'server': importlib.util.find_spec('scrypt_helper') is not None,"
        " 'fastapi': 'fastapi' in mods}))",
    )
    assert found["out"] == K2
    assert not found["server"]
    assert not found["fastapi"]


def test_the_client_alone_asks_a_real_node_and_reads_its_errors(client_only, server):
    data = os.urandom(32)
    found = run_in(
        client_only,
        "import json\n"
        "from scrypt_helper_client import Client, HelperError, Params\n"
        f"small = Params(salt={SMALL.salt!r}, n={SMALL.n}, r={SMALL.r}, p={SMALL.p}, buflen={SMALL.buflen})\n"
        f"with Client({server.url!r}, params=small, fallback=False) as c:\n"
        f"    out = c.hash(bytes.fromhex({data.hex()!r})).hex()\n"
        "other = Params(salt=b'other', n=2, r=1, p=1, buflen=8)\n"
        f"with Client({server.url!r}, params=other, fallback=False) as c:\n"
        "    try:\n"
        "        c.hash(b'x')\n"
        "    except HelperError as exc:\n"
        "        error = {'status': exc.status, 'errno': exc.errno, 'message': exc.message}\n"
        "print(json.dumps({'out': out, 'error': error}))",
    )
    assert (
        found["out"] == hashlib.scrypt(data, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=32).hex()
    )
    assert found["error"]["status"] == 400
    assert found["error"]["errno"] == 107
    assert found["error"]["message"]
