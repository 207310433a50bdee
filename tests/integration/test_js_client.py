"""The JavaScript client (clients/js) under Node's own test runner, against real nodes started here.

The Node tests get the nodes' URLs, a URL where nothing listens, and inputs with their outputs
computed here by hashlib (fresh each run), through the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper_client import wire_params
from tests.conftest import SMALL, allowed_json, local_node

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
NODE = shutil.which("node")


def expected(data: bytes) -> str:
    return hashlib.scrypt(data, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen).hex()


@pytest.mark.skipif(NODE is None, reason="node (Node.js >= 20) is not installed (apt-get install nodejs)")
def test_node_test_runner_passes_against_real_nodes(server: LocalServer):
    inputs = [os.urandom(32), os.urandom(17), os.urandom(1)]
    limited = local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        rules="scrypt : ip : 1 : 1s : 1s : block",
        drain_seconds=0,
    )
    env = {
        **os.environ,
        "SCRYPT_HELPER_URL": server.url,
        "SCRYPT_HELPER_LIMITED_URL": limited.url,
        "SCRYPT_HELPER_DEAD_URL": f"http://127.0.0.1:{free_port()}",
        "SCRYPT_HELPER_SMALL_PARAMS": json.dumps(wire_params(SMALL)),
        "SCRYPT_HELPER_VECTORS": json.dumps([[data.hex(), expected(data)] for data in inputs]),
    }
    with limited:
        result = subprocess.run(
            [NODE, "--test", "--test-reporter=tap", "test/"],
            cwd=CLIENT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# SKIP" not in output, output  # every test ran, none for want of a node
    assert "# fail 0" in output, output


def test_the_package_is_publishable():
    package = json.loads((CLIENT / "package.json").read_text())
    assert package["type"] == "module"
    assert package["engines"]["node"] == ">=20"
    assert package["license"] == "MPL-2.0"
    assert package.get("dependencies", {}) == {}
    entry = package["exports"]["."]
    assert (CLIENT / entry["default"]).is_file()
    assert entry["types"] == package["types"]
    assert (CLIENT / entry["types"]).is_file()
    assert all((CLIENT / path).exists() for path in package["files"])
    assert {"LICENSE", "CHANGELOG.md"} <= set(package["files"])
    # The changelog opens with the version the package says it is.
    versions = re.findall(r"^## (\S+)", (CLIENT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert versions[0] == package["version"]


TSC = shutil.which("tsc")


@pytest.mark.skipif(TSC is None, reason="tsc is not installed (apt-get install node-typescript)")
def test_the_type_declarations_describe_the_client_as_its_callers_use_it():
    # types/check.ts calls the client as a TypeScript user would, and marks what must not compile.
    done = subprocess.run(
        [str(TSC), "-p", str(CLIENT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_declarations_name_every_export_of_the_client():
    exported = set()
    for line in (CLIENT / "src" / "index.js").read_text().splitlines():
        if line.startswith("export {"):
            exported |= {name.strip() for name in line.split("{")[1].split("}")[0].split(",")}
    declarations = (CLIENT / "src" / "index.d.ts").read_text()
    declared = set(re.findall(r"^export (?:declare )?(?:const|function|class) (\w+)", declarations, re.M))
    assert exported == declared
