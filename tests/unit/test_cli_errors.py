"""A bad setting stops ``scrypt-helper serve`` with one line per bad value on stderr, status 2; every
bad invocation exits with its documented status (2 usage, 1 runtime) and one line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

from scrypt_helper import __version__
from scrypt_helper.cli.arguments import settings_from_args
from scrypt_helper.cli.bench import with_default_mode
from scrypt_helper.cli.main import build_parser, main
from scrypt_helper.core.config import ENV_PREFIX, Settings

NOT_JSON = str(Path(__file__))  # a file that exists, and no bench report
UNDER_A_FILE = str(Path(__file__) / "reports")  # a folder that cannot be made

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


class Bad(NamedTuple):
    """One bad invocation: its arguments, environment, exit status, and the flag (and variable) named."""

    argv: list[str]
    status: int
    flag: str
    env: tuple[tuple[str, str], ...] = ()
    variable: bool = False  # whether the line also names the flag's SCRYPT_HELPER_ variable


BAD = {
    "redis URL of no Redis scheme": Bad(["serve", "--redis-url", "notaurl"], 2, "--redis-url", variable=True),
    "rules file missing": Bad(["serve", "--rules-file", "/nonexistent"], 2, "--rules-file", variable=True),
    "workers not a number (variable)": Bad(
        ["serve"], 2, "--workers", (("SCRYPT_HELPER_WORKERS", "abc"),), True
    ),
    "workers zero": Bad(["serve", "--workers", "0"], 2, "--workers", variable=True),
    "port out of range": Bad(["serve", "--port", "70000"], 2, "--port", variable=True),
    "boolean variable": Bad(["serve"], 2, "--lock-memory", (("SCRYPT_HELPER_LOCK_MEMORY", "maybe"),), True),
    "unknown engine (serve)": Bad(["serve", "--engine", "turbo"], 2, "--engine", variable=True),
    "unknown log level": Bad(["serve", "--log-level", "loud"], 2, "--log-level", variable=True),
    "allowed params not JSON": Bad(["serve", "--allowed-params", "{"], 2, "--allowed-params", variable=True),
    "queue wait zero": Bad(["serve", "--max-queue-wait", "0"], 2, "--max-queue-wait", variable=True),
    "sentry DSN malformed": Bad(["serve", "--sentry-dsn", "notadsn"], 2, "--sentry-dsn", variable=True),
    "metrics port the service's": Bad(
        ["serve", "--port", "8123", "--metrics-port", "8123"], 2, "--metrics-port", variable=True
    ),
    "more processes than workers": Bad(
        [
            "serve",
            "--rules",
            "",
            "--trusted-proxies",
            "1",
            "--processes",
            "3",
            "--workers",
            "2",
            "--port",
            "0",
        ],
        2,
        "--processes",
        variable=True,
    ),
    "lock memory on a library engine": Bad(
        ["serve", "--engine", "hashlib", "--lock-memory", "--port", "0"], 2, "--lock-memory", variable=True
    ),
    "host no address": Bad(["serve", "--host", "999.1.1.1", "--port", "0"], 2, "--host", variable=True),
    "capacity ops zero": Bad(["capacity", "--ops-per-core", "0"], 2, "--ops-per-core"),
    "capacity ops negative": Bad(["capacity", "--ops-per-core", "-3"], 2, "--ops-per-core"),
    "capacity ops infinite": Bad(["capacity", "--ops-per-core", "inf"], 2, "--ops-per-core"),
    "capacity report missing": Bad(["capacity", "--from-report", "/x"], 2, "--from-report"),
    "capacity report not JSON": Bad(["capacity", "--from-report", NOT_JSON], 2, "--from-report"),
    "capacity instances missing": Bad(
        ["capacity", "--ops-per-core", "9", "--instances", "/x"], 2, "--instances"
    ),
    "capacity utilization over 1": Bad(
        ["capacity", "--ops-per-core", "9", "--utilization", "2"], 2, "--utilization"
    ),
    "capacity peak zero": Bad(["capacity", "--ops-per-core", "9", "--peak", "0"], 2, "--peak"),
    "unknown engine (hash)": Bad(["hash", "00", "--engine", "turbo"], 2, "--engine"),
    "hash N zero": Bad(["hash", "00", "-N", "0"], 2, "-N"),
    "engines threads zero": Bad(["engines", "--threads", "0"], 2, "--threads"),
    "engines seconds zero": Bad(["engines", "--seconds", "0"], 2, "--seconds"),
    "unknown engine (bench)": Bad(["bench", "--engine", "turbo"], 2, "--engine"),
    "bench concurrency zero": Bad(["bench", "service", "--concurrency", "0"], 2, "--concurrency"),
    "bench seconds negative": Bad(["bench", "--seconds", "-1"], 2, "--seconds"),
    "bench limits requests zero": Bad(["bench", "limits", "--requests", "0"], 2, "--requests"),
    "bench flag of another mode": Bad(["bench", "parser", "--concurrency", "2"], 2, "--concurrency"),
    "bench unknown mode": Bad(["bench", "nope"], 2, "MODE"),
    "bench folder cannot be made": Bad(["bench", "limits", "--out", UNDER_A_FILE], 2, "--out"),
    "client URL malformed": Bad(["client", "00", "--url", "notaurl"], 2, "--url"),
    "client plain http beyond loopback": Bad(
        ["client", "00", "--url", "http://scrypt.example.com"], 2, "--url"
    ),
    "client deadline zero": Bad(
        ["client", "00", "--url", "https://a.example", "--deadline", "0"], 2, "--deadline"
    ),
    "unknown command": Bad(["frobnicate"], 2, "COMMAND"),
}


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets."""
    for name in os.environ:
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``scrypt-helper argv`` in this process: its exit status, stdout and stderr."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors, --help and --version
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_bad_invocation_exits_with_its_status_and_one_line_naming_the_flag(
    bad: Bad, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name, value in bad.env:
        monkeypatch.setenv(name, value)
    status, out, err = run(bad.argv, capsys)
    assert status == bad.status, err
    assert "Traceback" not in out + err
    lines = err.splitlines()
    if lines[0].startswith("usage:"):  # argparse's block: the usage, then the one line of error
        lines = [line for line in lines if not line.startswith((" ", "usage:"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("scrypt-helper")
    assert bad.flag in lines[0]
    if bad.variable:
        assert f"{ENV_PREFIX}{bad.flag[2:].replace('-', '_').upper()} / {bad.flag}" in lines[0]


def test_a_port_in_use_is_a_runtime_failure_found_before_the_engines_start(
    port_in_use: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr("scrypt_helper.runtime.server.run", pytest.fail)
    status, _, err = run(["serve", "--port", str(port_in_use)], capsys)
    assert status == 1
    assert err.splitlines() == [
        f"scrypt-helper: error: SCRYPT_HELPER_PORT / --port: cannot listen on 127.0.0.1:{port_in_use}: "
        "Address already in use"
    ]


def test_version(capsys: pytest.CaptureFixture[str]):
    assert run(["--version"], capsys) == (0, f"scrypt-helper {__version__}\n", "")


def test_top_level_help_lists_every_command_in_plain_text(capsys: pytest.CaptureFixture[str]):
    status, out, _ = run(["--help"], capsys)
    assert status == 0
    commands = {"serve", "hash", "engines", "bench", "capacity", "client", "stretch"}
    section = out.split("\ncommands:\n")[1].split("\n\n")[0]
    listed = {line.split()[0] for line in section.splitlines() if not line.startswith("   ")}
    assert listed == commands
    assert "``" not in out
    assert "exit status:" in out


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]):
    _, serve_help, _ = run(["serve", "--help"], capsys)
    _, capacity_help, _ = run(["capacity", "--help"], capsys)
    assert "(default: 8080)" in " ".join(serve_help.split())
    assert "(default: 0.8)" in " ".join(capacity_help.split())


@pytest.mark.parametrize(
    ("mode", "its_flag", "another_modes_flag"),
    [("service", "--concurrency", "--flood-connections"), ("limits", "--requests", "--concurrency")],
)
def test_a_bench_modes_help_shows_its_own_flags(
    mode: str, its_flag: str, another_modes_flag: str, capsys: pytest.CaptureFixture[str]
):
    status, out, _ = run(["bench", mode, "--help"], capsys)
    assert status == 0
    assert its_flag in out
    assert another_modes_flag not in out


def test_bench_without_a_mode_is_bench_service():
    assert with_default_mode(["bench", "--tiny"]) == ["bench", "service", "--tiny"]
    assert with_default_mode(["bench"]) == ["bench", "service"]
    assert with_default_mode(["bench", "--help"]) == ["bench", "--help"]
    assert with_default_mode(["bench", "limits"]) == ["bench", "limits"]
    args = build_parser().parse_args(with_default_mode(["bench", "--tiny"]))
    assert (args.mode, args.tiny, args.engine) == ("service", True, ["auto"])


@pytest.mark.parametrize(
    ("flags", "variable", "locked"),
    [([], "true", True), (["--no-lock-memory"], "true", False), (["--lock-memory"], "false", True)],
)
def test_lock_memory_is_a_flag_pair_over_its_variable(
    flags: list[str], variable: str, locked: bool, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SCRYPT_HELPER_LOCK_MEMORY", variable)
    args = build_parser().parse_args(["serve", *flags])
    assert settings_from_args(args).lock_memory is locked


def test_an_empty_variable_is_unset_but_empty_rules_are_none(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SCRYPT_HELPER_PORT", "")
    monkeypatch.setenv("SCRYPT_HELPER_WORKERS", "")
    monkeypatch.setenv("SCRYPT_HELPER_RULES", "")
    settings = Settings()
    assert settings.port == 8080
    assert settings.workers == Settings.model_fields["workers"].default_factory()
    assert settings.rule_set == ()
