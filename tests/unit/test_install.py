"""The suite tests the package that was installed, not the source tree next to it."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import pytest

import scrypt_helper

FROM_WHEEL = os.environ.get("SCRYPT_HELPER_TEST_INSTALL") == "wheel"


@pytest.mark.skipif(not FROM_WHEEL, reason="the run against the built wheel checks this (scripts/test)")
def test_the_package_under_test_is_the_built_wheel_without_harnesses():
    assert "site-packages" in Path(scrypt_helper.__file__).resolve().parts
    distribution = metadata.distribution("scrypt-helper")
    origin = json.loads(distribution.read_text("direct_url.json") or "{}")
    assert origin["url"].endswith(".whl"), origin
    shipped = [str(path) for path in distribution.files or ()]
    assert "scrypt_helper/http/app.py" in shipped
    assert not [path for path in shipped if "harness" in path or path.endswith("cluster.py")]
