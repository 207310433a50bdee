"""The release gate's local path: the image itself as two containers behind nginx sharing one Redis,
Locust as one master and two workers, the criteria judged by the master on every worker's figures,
the stack torn down, and promotion (a new tag on the tested image, never a rebuild) only when every
criterion was met. Each run's CSV, HTML report and plot are kept."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import image
from harness.cluster import find_nginx
from tests.deploy.cloudformation import load_template

ROOT = Path(__file__).parents[2]
RELEASE = ROOT / "scripts" / "release.py"
STEPS = ("deploy", "wait for health", "distributed load test: 2 workers", "teardown")
DIGEST = "sha256:" + "0123456789abcdef" * 4

MISSING = [
    reason
    for reason, missing in (
        ("podman is not installed (apt-get install podman)", not image.available()),
        ("nginx is not installed (apt-get install nginx)", find_nginx() is None),
        (
            "redis-server is not installed (apt-get install redis-server)",
            shutil.which("redis-server") is None,
        ),
    )
    if missing
]
needs_the_image_stack = pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING))


@pytest.fixture(scope="module")
def tested_image() -> Iterator[dict]:
    """The image the gate runs: IMAGE:test as this checkout builds it, under a tag of this module's
    own, so that a rebuild of IMAGE:test meanwhile changes nothing here."""
    found = image.inspect_image(image.checkout_image())
    candidate = f"localhost/scrypt-helper-release-test:candidate-{uuid.uuid4().hex[:12]}"
    image.run_podman("tag", found["Id"], candidate)
    yield {**found, "tag": candidate}
    image.untag(candidate)


@pytest.fixture
def promotion_tag() -> Iterator[str]:
    """A tag no image has yet; removed afterwards."""
    tag = f"localhost/scrypt-helper-release-test:{uuid.uuid4().hex[:12]}"
    yield tag
    image.untag(tag)


def release_local(
    results: Path, candidate: str, promote_to: str, *criteria: str
) -> subprocess.CompletedProcess[str]:
    """The gate's local path on a small load: six users, each pausing 50 ms between requests."""
    load = ["--small", "--workers", "2", "--users", "6", "--spawn-rate", "6", "--run-time", "3s"]
    load += ["--think-time", "0.05", "--results", str(results), *criteria]
    stack = ["local", "--image", candidate, "--nodes", "2", "--node-workers", "1"]
    stack += ["--promote-to", promote_to]
    return subprocess.run(
        [sys.executable, str(RELEASE), *load, *stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def steps(output: str) -> list[str]:
    return [re.sub(r" of http\S+", "", step) for step in re.findall(r"^== release: (.*)$", output, re.M)]


@needs_the_image_stack
def test_a_release_that_meets_the_criteria_promotes_the_image_it_tested(
    tmp_path: Path, tested_image: dict, promotion_tag: str
):
    criteria = ("--min-ops", "5", "--max-p99-ms", "5000", "--max-fail-ratio", "0")
    done = release_local(tmp_path, tested_image["tag"], promotion_tag, *criteria)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert steps(done.stdout) == [*STEPS, "promote"], done.stdout[-3000:]
    assert done.stdout.rstrip().endswith(": promoted")
    assert "success criteria met" in done.stdout
    # The candidate it ran is the image of the tag, and the promoted tag names that same image.
    candidate = (
        f"candidate: {tested_image['tag']} (id sha256:{tested_image['Id']}, digest {tested_image['Digest']})"
    )
    assert candidate in done.stdout
    promoted = image.inspect_image(promotion_tag)
    assert (promoted["Id"], promoted["Digest"]) == (tested_image["Id"], tested_image["Digest"])
    assert (
        f"promoted {tested_image['Digest']} (id sha256:{tested_image['Id']}) to {promotion_tag}"
        in done.stdout
    )
    # The nodes were containers, and none is left behind.
    leftover = image.run_podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in leftover if name.startswith("scrypt-helper-release-")]
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


@needs_the_image_stack
def test_a_missed_criterion_promotes_nothing_and_the_stack_is_still_torn_down(
    tmp_path: Path, tested_image: dict, promotion_tag: str
):
    done = release_local(tmp_path, tested_image["tag"], promotion_tag, "--min-ops", "1000000")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert steps(done.stdout) == list(STEPS), done.stdout[-3000:]
    assert done.stdout.rstrip().endswith(": not promoted")
    assert "success criteria missed: good answers" in done.stdout
    assert not image.image_exists(promotion_tag)
    leftover = image.run_podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in leftover if name.startswith("scrypt-helper-release-")]
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / "summary.json").read_text())["exit_code"] == 1


def load_release_module():
    spec = importlib.util.spec_from_file_location("release", RELEASE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_aws_load_test_stack_runs_the_image_by_digest_with_parameters_the_template_declares():
    release = load_release_module()
    template = load_template(release.TEMPLATE)
    candidate = f"{image.IMAGE}@{DIGEST}"
    stack = release.AwsStack("rc", candidate, {}, [])
    command = stack.deploy_command()
    overrides = dict(item.split("=", 1) for item in command[command.index("--parameter-overrides") + 1 :])
    assert set(overrides) <= set(template["Parameters"])
    assert overrides["Image"] == candidate
    assert re.fullmatch(template["Parameters"]["Image"]["AllowedPattern"], overrides["Image"])
    parameters = template["Parameters"]
    assert release.AWS_LOAD_TEST_PARAMETERS["InstanceType"] in parameters["InstanceType"]["AllowedValues"]
    # A fixed size: autoscaling during the run would blur the capacity the run measures.
    size = int(release.AWS_LOAD_TEST_PARAMETERS["MinSize"])
    assert size == int(release.AWS_LOAD_TEST_PARAMETERS["MaxSize"]) >= int(parameters["MinSize"]["MinValue"])


def test_aws_promotion_tags_the_tested_digest_and_a_tag_is_refused():
    release = load_release_module()
    candidate = f"{image.IMAGE}@{DIGEST}"
    tags = [f"{image.IMAGE}:v1.2.3", f"{image.IMAGE}:latest"]
    stack = release.AwsStack("rc", candidate, {}, tags)
    assert stack.promote_command() == [
        *("docker", "buildx", "imagetools", "create"),
        *("--tag", tags[0], "--tag", tags[1]),
        candidate,
    ]
    # A tag can move between the load test and the promotion: only a digest is accepted.
    with pytest.raises(ValueError, match="by digest"):
        release.AwsStack("rc", f"{image.IMAGE}:candidate-abc", {}, tags)
    with pytest.raises(SystemExit):
        release.parse(["aws", "--stack-name", "rc", "--image", f"{image.IMAGE}:latest"])
