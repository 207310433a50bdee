"""A bad setting stops ``scrypt-helper serve`` with one line per bad value on stderr, status 2."""

from __future__ import annotations

import pytest

from scrypt_helper.cli.main import main

WORKERS_LINE = (
    "scrypt-helper: error: SCRYPT_HELPER_WORKERS / --workers: "
    "Input should be a valid integer, unable to parse string as an integer (got 'abc')"
)


def test_a_bad_flag_is_one_line_naming_the_variable_and_the_flag(capsys: pytest.CaptureFixture[str]):
    assert main(["serve", "--port", "0", "--workers", "abc"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [WORKERS_LINE]
    assert captured.out == ""


def test_a_bad_variable_reads_the_same(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("SCRYPT_HELPER_WORKERS", "abc")
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == [WORKERS_LINE]


def test_each_bad_setting_has_its_line_with_where_inside_it_went_wrong(capsys: pytest.CaptureFixture[str]):
    allowed = '[{"salt": "s", "N": "many", "r": 8, "p": 1, "buflen": 32}]'
    assert main(["serve", "--drain-seconds", "-1", "--allowed-params", allowed, "--engine", "turbo"]) == 2
    engine, *lines = capsys.readouterr().err.splitlines()
    assert engine.startswith("scrypt-helper: error: SCRYPT_HELPER_ENGINE / --engine: unknown engine 'turbo'")
    assert lines == [
        "scrypt-helper: error: SCRYPT_HELPER_ALLOWED_PARAMS / --allowed-params [0][N]: "
        "Input should be a valid integer, unable to parse string as an integer (got 'many')",
        "scrypt-helper: error: SCRYPT_HELPER_DRAIN_SECONDS / --drain-seconds: "
        "Input should be greater than or equal to 0 (got '-1')",
    ]


def test_a_secret_setting_is_never_quoted_back(capsys: pytest.CaptureFixture[str]):
    assert main(["serve", "--api-keys", "ops:short-secret"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("scrypt-helper: error: SCRYPT_HELPER_API_KEYS / --api-keys: ")
    assert "short-secret" not in line


def test_a_rule_that_does_not_parse_names_its_line(capsys: pytest.CaptureFixture[str]):
    assert main(["serve", "--rules", "scrypt : ip : 1 : 1s : 1s : stall"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("scrypt-helper: error: rule 1 ('scrypt : ip : 1 : 1s : 1s : stall')")
