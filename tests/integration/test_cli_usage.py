"""The real ``scrypt-helper`` process: a bad setting or a port in use ends it at once, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest


def scrypt_helper(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SCRYPT_HELPER_")}
    return subprocess.run(
        [sys.executable, "-m", "scrypt_helper", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
    )


def test_a_port_in_use_ends_serve_before_the_engines_start(port_in_use: int):
    began = time.monotonic()
    done = scrypt_helper("serve", "--port", str(port_in_use))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"scrypt-helper: error: SCRYPT_HELPER_PORT / --port: cannot listen on 127.0.0.1:{port_in_use}: "
        "Address already in use"
    ]
    assert done.stdout == ""  # no log line: no engine self-test, no worker started
    assert time.monotonic() - began < 20


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["serve"], {"SCRYPT_HELPER_WORKERS": "abc"}, "SCRYPT_HELPER_WORKERS / --workers: "),
        (["serve", "--redis-url", "notaurl"], {}, "SCRYPT_HELPER_REDIS_URL / --redis-url: "),
        (["bench", "--tiny", "--engine", "turbo"], {}, "argument --engine: unknown engine 'turbo'"),
    ],
)
def test_a_bad_value_ends_the_process_in_one_line_with_status_2(
    args: list[str], env: dict[str, str], line: str
):
    done = scrypt_helper(*args, **env)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert line in done.stderr.splitlines()[-1]
