"""The Python package and the JavaScript client each ship the MPL-2.0 text they declare."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TITLE = "Mozilla Public License Version 2.0"


@pytest.mark.parametrize("path", ["LICENSE", "clients/js/LICENSE"])
def test_the_licence_text_is_there(path):
    text = (ROOT / path).read_text()
    assert text.startswith(TITLE), path
    assert "Exhibit A - Source Code Form License Notice" in text, f"{path} is not the whole licence"


def test_both_packages_declare_mpl_2_0():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "MPL-2.0"
    assert pyproject["license-files"] == ["LICENSE"]
    assert json.loads((ROOT / "clients/js/package.json").read_text())["license"] == "MPL-2.0"
