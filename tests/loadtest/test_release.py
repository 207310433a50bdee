"""The release gate's local path: the loopback cluster, Locust as one master and two workers, the
criteria judged by the master on every worker's figures, the stack torn down, and promotion only
when every criterion was met. Each run's CSV, HTML report and plot are kept."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster import find_nginx
from tests.deploy.cloudformation import load_template

ROOT = Path(__file__).parents[2]
RELEASE = ROOT / "scripts" / "release.py"
STEPS = ("deploy", "wait for health", "distributed load test: 2 workers", "teardown")

needs_nginx = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get nginx)")


def release_local(results: Path, *criteria: str) -> subprocess.CompletedProcess[str]:
    load = ["--small", "--workers", "2", "--users", "6", "--spawn-rate", "6", "--run-time", "3s"]
    load += ["--think-time", "0", "--results", str(results), *criteria]
    stack = ["local", "--nodes", "2", "--node-workers", "1", "--engine", "hashlib"]
    return subprocess.run(
        [sys.executable, str(RELEASE), *load, *stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def steps(output: str) -> list[str]:
    return [re.sub(r" of http\S+", "", step) for step in re.findall(r"^== release: (.*)$", output, re.M)]


@needs_nginx
def test_a_release_that_meets_the_criteria_is_promoted(tmp_path):
    done = release_local(tmp_path, "--min-ops", "5", "--max-p99-ms", "5000", "--max-fail-ratio", "0")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert steps(done.stdout) == [*STEPS, "promote"]
    assert done.stdout.rstrip().endswith(": promoted")
    assert "success criteria met" in done.stdout
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["exit_code"], summary["workers"], summary["users"], summary["failures"]) == (0, 2, 6, 0)
    # The master spread the users over both workers and judged the sum of their figures.
    assert "to 2 ready workers" in (folder / "master.log").read_text()
    with (folder / "locust_stats.csv").open(newline="") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"hash", "known-answer", "malformed", "Aggregated"}
    assert int(rows["Aggregated"]["Request Count"]) == summary["requests"] > 0
    assert (folder / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert (folder / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Aggregated" in (folder / "locust_stats_history.csv").read_text()


@needs_nginx
def test_a_missed_criterion_is_not_promoted_and_the_stack_is_still_torn_down(tmp_path):
    done = release_local(tmp_path, "--min-ops", "1000000")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert steps(done.stdout) == list(STEPS)
    assert done.stdout.rstrip().endswith(": not promoted")
    assert "success criteria missed: good answers" in done.stdout
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / "summary.json").read_text())["exit_code"] == 1


def load_release_module():
    spec = importlib.util.spec_from_file_location("release", RELEASE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_aws_load_test_stack_sets_only_parameters_the_template_declares():
    release = load_release_module()
    template = load_template(release.TEMPLATE)
    stack = release.AwsStack("rc", "https://example.invalid/scrypt-helper.tar.gz", {}, None, [])
    command = stack.deploy_command()
    overrides = command[command.index("--parameter-overrides") + 1 :]
    names = {item.split("=", 1)[0] for item in overrides}
    assert names <= set(template["Parameters"])
    parameters = template["Parameters"]
    assert release.AWS_LOAD_TEST_PARAMETERS["InstanceType"] in parameters["InstanceType"]["AllowedValues"]
    # A fixed size: autoscaling during the run would blur the capacity the run measures.
    size = int(release.AWS_LOAD_TEST_PARAMETERS["MinSize"])
    assert size == int(release.AWS_LOAD_TEST_PARAMETERS["MaxSize"]) >= int(parameters["MinSize"]["MinValue"])
