"""Each ``bench`` mode's command gives its measuring code every argument that code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import scrypt_helper.bench
from scrypt_helper.cli.main import build_parser

BENCH = Path(scrypt_helper.bench.__file__).parent
# The modules each mode hands its arguments to.
READERS = {
    "service": ["service"],
    "abuse": ["abuse"],
    "limits": ["limits"],
    "parser": ["parser"],
    "overload": ["overload", "batching"],
    "batching": ["batching"],
}


@pytest.mark.parametrize("mode", READERS)
def test_a_mode_parses_every_argument_its_code_reads(mode: str):
    read = {
        name
        for module in READERS[mode]
        for name in re.findall(r"\bargs\.(\w+)", (BENCH / f"{module}.py").read_text())
    }
    args = build_parser().parse_args(["bench", mode])
    assert read - set(vars(args)) == set()
