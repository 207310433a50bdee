"""The scrypt-helper command: hash, version, configuration errors, self-test refusal."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from scrypt_helper.cli.main import main
from scrypt_helper.engines import SelfTestFailed
from scrypt_helper.engines import registry as engine_registry
from scrypt_helper.engines.vectors import PICL
from tests.conftest import SMALL, allowed_json, local_node


def scrypt_helper(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrypt_helper", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("engine", ["auto", "libsodium", "hashlib"])
def test_hash_prints_the_known_answer(engine):
    vector = PICL[0]
    done = scrypt_helper("hash", vector.password.hex(), "--engine", engine)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == vector.output.hex()


def test_hash_with_other_parameters():
    done = scrypt_helper("hash", "", "--salt", "", "-N", "16", "-r", "1", "-p", "1", "--buflen", "64")
    assert done.stdout.strip().startswith("77d6576238657b203b19ca42c18a0497")


def test_hash_rejects_bad_hex():
    done = scrypt_helper("hash", "xyz")
    assert done.returncode == 2
    assert "non-hexadecimal" in done.stderr


def test_hash_reads_the_input_from_stdin_when_it_is_not_given():
    vector = PICL[0]
    done = scrypt_helper("hash", "--engine", "hashlib", stdin=f"  {vector.password.hex().upper()} \n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == vector.output.hex()
    assert vector.password.hex() not in done.stderr


@pytest.mark.parametrize(("stdin", "message"), [("", "no input"), ("xyz\n", "non-hexadecimal")])
def test_hash_refuses_no_or_bad_input_on_stdin(stdin, message):
    done = scrypt_helper("hash", "--engine", "hashlib", stdin=stdin)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("command", ["hash", "client"])
def test_help_says_stdin_is_the_safe_way_to_give_the_input(command):
    done = scrypt_helper(command, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "give it on stdin" in text
    assert "that is the safe way, as command-line arguments show in ps and stay in shell history" in text


def test_client_reads_the_input_from_stdin_and_asks_the_helper(server):
    vector = PICL[0]
    done = scrypt_helper("client", "--url", server.url, stdin=vector.password.hex() + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == vector.output.hex()


def test_client_refuses_plain_http_beyond_loopback():
    done = scrypt_helper("client", "--url", "http://scrypt.example.com", "--deadline", "1", stdin="00\n")
    assert done.returncode == 2
    assert "refusing to send secrets over plain http:// to scrypt.example.com" in done.stderr
    assert "--allow-insecure-http" in done.stderr
    stretch = scrypt_helper(
        "stretch", "--email", "a@example.org", "--url", "http://10.0.0.1:8080", stdin="pw\n"
    )
    assert stretch.returncode == 2
    assert "refusing to send secrets over plain http:// to 10.0.0.1" in stretch.stderr


def test_version():
    done = scrypt_helper("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("scrypt-helper ")


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--engine", "turbo"], "unknown engine 'turbo'"), (["--allowed-params", "[]"], "--allowed-params")],
)
def test_serve_refuses_bad_configuration(flags, message):
    done = scrypt_helper("serve", "--port", "0", *flags)
    assert done.returncode == 2
    assert message in done.stderr


def test_serve_refuses_to_start_when_the_self_test_fails(monkeypatch, capsys):
    def wrong_answer(engine: object) -> None:
        raise SelfTestFailed(
            "engine libsodium gave a wrong scrypt answer (N=16, r=1, p=1, lane 0); refusing to serve"
        )

    monkeypatch.setattr(engine_registry, "self_test", wrong_answer)
    monkeypatch.setattr("scrypt_helper.runtime.server.configure_logging", lambda level: None)
    monkeypatch.setattr(
        "scrypt_helper.runtime.server.forbid_core_dumps", lambda: None
    )  # keep pytest dumpable
    monkeypatch.setattr("scrypt_helper.runtime.server.serve_node", pytest.fail)
    assert main(["serve", "--engine", "libsodium", "--port", "0"]) == 1
    assert "refusing to serve" in capsys.readouterr().err


def test_engines_lists_every_engine_that_runs_here_with_its_self_test():
    done = scrypt_helper("engines", "--tiny", "--seconds", "0.1", "--threads", "1,2")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert {"libsodium", "hashlib"} <= set(lines)
    if importlib.util.find_spec("scrypt_helper._native") is not None:  # the kernel was built
        assert lines["native"][2] == "pass"
        assert lines["native-portable"][2] == "pass"
    assert lines["libsodium"][2] == "pass"
    assert lines["libsodium"][4] == "1.00"


@pytest.mark.skipif(
    importlib.util.find_spec("scrypt_helper._native") is None, reason="the kernel is not built"
)
def test_engines_reference_alternates_each_native_variant_with_py_scrypt():
    done = scrypt_helper("engines", "--reference", "--tiny", "--seconds", "0.1", "--rounds", "2")
    assert done.returncode == 0, done.stderr
    rounds = re.findall(
        r"^round (\d): (native-\w+) [\d.]+ h/s \(\d lanes\), py-scrypt [\d.]+ h/s: ([\d.]+)x$",
        done.stdout,
        re.MULTILINE,
    )
    variants = sorted({name for _, name, _ in rounds})
    assert variants
    assert "native-portable" not in variants
    # Each variant once a round, the reference measured after each.
    assert [(int(n), name) for n, name, _ in rounds] == [(n, name) for n in (1, 2) for name in variants]
    for name in variants:
        ratios = [float(ratio) for _, each, ratio in rounds if each == name]
        median = re.search(rf"^{name} against py-scrypt: median ([\d.]+)x", done.stdout, re.MULTILINE)
        assert median is not None
        assert float(median[1]) == pytest.approx(sum(ratios) / 2, abs=0.01)


def test_engines_reference_without_py_scrypt_says_how_to_install_it(tmp_path):
    # A module named scrypt that cannot be imported stands in for its absence.
    (tmp_path / "scrypt.py").write_text("raise ImportError('absent')\n")
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = scrypt_helper("engines", "--reference", "--tiny", "--seconds", "0.1", env=environment)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "py-scrypt is not installed (pip install scrypt, or the bench extra)" in done.stderr


def test_the_commands_need_no_development_package():
    probe = (
        "import sys; from scrypt_helper.cli.main import build_parser; build_parser(); "
        "heavy = {'matplotlib', 'locust', 'schemathesis', 'hypothesis'} & set(sys.modules); "
        "sys.exit(sorted(heavy) or 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_bad_rule_stops_start_up_naming_the_line():
    rules = "scrypt : ip : 1 : 1s : 1s : block\nscrypt : ip : 1 : 1s : 1s : stall"
    with pytest.raises(RuntimeError) as caught:
        local_node(engine="hashlib", allowed_params=allowed_json(SMALL), rules=rules).start()
    assert "rule 2" in str(caught.value)
    assert "unknown policy 'stall'" in str(caught.value)
