"""The README documents every setting and every errno the code has."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrypt_helper.core.config import ENV_PREFIX, Settings
from scrypt_helper.core.errors import Errno

README = (Path(__file__).parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_in_the_config_table(name):
    flag = "--" + name.replace("_", "-")
    assert f"| `{flag}` | `{ENV_PREFIX}{name.upper()}` |" in README


@pytest.mark.parametrize("errno", list(Errno))
def test_every_errno_is_in_the_error_table(errno):
    assert f"| {int(errno)} |" in README
