"""The Locust scenario runs headless against a real node, and fails when a criterion is missed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scrypt_helper_client import wire_params
from tests.conftest import SMALL, allowed_json, local_node

LOCUSTFILE = Path(__file__).parents[2] / "loadtest" / "locustfile.py"
SMALL_JSON = json.dumps(wire_params(SMALL))


def locust(url: str, *criteria: str, seconds: int = 4) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-H", url]
    command += ["-u", "6", "-r", "6", "-t", f"{seconds}s", "--only-summary", "--scrypt-params", SMALL_JSON]
    return subprocess.run(
        [*command, *criteria], capture_output=True, text=True, timeout=seconds + 60, check=False
    )


@pytest.fixture(scope="module")
def node():
    with local_node(engine="hashlib", allowed_params=allowed_json(SMALL), queue_size=64) as server:
        yield server


def test_the_mix_passes_its_criteria(node):
    done = locust(node.url, "--min-ops", "5", "--max-p99-ms", "5000")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "success criteria met" in done.stderr
    for name in ("hash", "known-answer", "malformed"):
        assert f"POST     {name} " in done.stdout + done.stderr


def test_the_host_may_end_with_a_slash(node):
    done = locust(node.url + "/", "--min-ops", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "success criteria met" in done.stderr


def test_a_missed_criterion_fails_the_run(node):
    done = locust(node.url, "--min-ops", "1000000")
    assert done.returncode == 1
    assert "success criteria missed: good answers" in done.stderr


def test_a_wrong_parameter_set_shows_as_failures(node):
    wrong = json.dumps({"salt": "other", "N": 1024, "r": 8, "p": 1, "buflen": 32})
    done = locust(node.url, "--scrypt-params", wrong)
    assert done.returncode == 1
    assert "failed checks" in done.stderr
