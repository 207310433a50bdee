"""One image name everywhere: what the release workflow pushes and promotes is what Kubernetes, the
AWS template, docker compose and the test harness run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness import image
from tests.deploy.cloudformation import load_template

ROOT = Path(__file__).resolve().parents[2]
NAME = "ghcr.io/mozilla-services/scrypt-helper"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def repository(reference: str) -> str:
    """``reference`` without its tag or digest."""
    name = reference.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def test_repository_strips_tags_and_digests():
    assert repository(f"{NAME}:v1.2.3") == repository(f"{NAME}@{DIGEST}") == NAME
    assert repository("localhost:5000/scrypt-helper") == "localhost:5000/scrypt-helper"


def test_the_harness_builds_the_canonical_name():
    assert image.IMAGE == NAME
    assert repository(image.TEST_TAG) == NAME


def test_the_release_workflow_pushes_and_promotes_the_canonical_name():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow["env"]["IMAGE"] == NAME


def test_kubernetes_runs_the_canonical_name():
    k8s = ROOT / "deploy" / "k8s"
    (entry,) = yaml.safe_load((k8s / "kustomization.yaml").read_text())["images"]
    assert entry["name"] == NAME
    deployments = [
        doc
        for doc in yaml.safe_load_all((k8s / "deployment.yaml").read_text())
        if doc and doc["kind"] == "Deployment"
    ]
    images = [c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]]
    assert images
    assert {repository(name) for name in images} == {NAME}


def test_the_aws_template_runs_the_canonical_name_by_digest():
    parameter = load_template(ROOT / "deploy" / "aws" / "scrypt-helper.yaml")["Parameters"]["Image"]
    assert re.fullmatch(parameter["AllowedPattern"], f"{NAME}@{DIGEST}")
    assert not re.fullmatch(parameter["AllowedPattern"], f"{NAME}-fork@{DIGEST}")
    assert NAME in parameter["ConstraintDescription"]


def test_compose_builds_and_runs_the_canonical_name():
    compose = yaml.safe_load((ROOT / "deploy" / "docker" / "docker-compose.yml").read_text())
    nodes = [service for name, service in compose["services"].items() if name.startswith("node")]
    assert nodes
    for node in nodes:
        assert node["image"] == f"{NAME}:${{VERSION:-dev}}"
        assert node["build"]["dockerfile"] == "deploy/docker/Dockerfile"
