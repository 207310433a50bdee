"""A node starts without the libraries it does not use: every start (a deploy, a scale-out, each
front process) pays for what it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def imported_after(statement: str) -> set[str]:
    """Top-level packages imported by a fresh interpreter running ``statement``."""
    code = (
        f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_a_node_without_redis_imports_no_redis_client_and_no_http_client():
    modules = imported_after(
        "import scrypt_helper.cli.main\n"
        "from scrypt_helper.runtime.server import run\n"
        "from scrypt_helper.http.app import create_app\n"
        "from scrypt_helper.abuse import LimitStore\n"
        "LimitStore(None)"
    )
    assert {"scrypt_helper", "fastapi", "uvicorn"} <= modules
    assert not modules & {"redis", "httpx", "rich"}


@pytest.mark.parametrize("name", ["local_hash", "Params", "HelperError", "UrlHealth"])
def test_the_clients_local_parts_import_without_httpx(name):
    assert "httpx" not in imported_after(f"from scrypt_helper_client import {name}")


def test_the_clients_http_parts_import_on_first_use():
    modules = imported_after("from scrypt_helper_client import Client, stretch, retry_after_seconds")
    assert "httpx" in modules
    done = subprocess.run(
        [sys.executable, "-c", "import scrypt_helper_client as c; c.NoSuchThing"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "has no attribute 'NoSuchThing'" in done.stderr
