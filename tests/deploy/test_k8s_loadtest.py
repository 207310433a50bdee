"""deploy/k8s/loadtest: the distributed Locust base validates against the Kubernetes schemas, and its
parts fit together: the workers reach the master, both run the repository's locustfile, every
setting is one Locust or the locustfile reads, and the master waits for as many workers as run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_k8s import VERSIONS

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "loadtest"


def kustomization() -> dict:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def manifests() -> list[dict]:
    return [
        doc
        for name in kustomization()["resources"]
        for doc in yaml.safe_load_all((BASE / name).read_text())
        if doc is not None
    ]


def one(kind: str) -> dict:
    (doc,) = [doc for doc in manifests() if doc["kind"] == kind]
    return doc


def settings() -> dict[str, str]:
    (generator,) = [g for g in kustomization()["configMapGenerator"] if g["name"] == "loadtest-settings"]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def test_the_base_lists_every_manifest_of_its_folder():
    listed = set(kustomization()["resources"])
    assert listed == {path.name for path in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert {key: (BASE / path).resolve() for key, path in mounted_files().items()} == {
        "locustfile.py": ROOT / "loadtest" / "locustfile.py",
        "criteria.py": ROOT / "src" / "scrypt_helper" / "bench" / "criteria.py",
    }


def mounted_files() -> dict[str, str]:
    """The files of the locustfile ConfigMap: mounted name -> path from the base."""
    (locustfile,) = [g for g in kustomization()["configMapGenerator"] if g["name"] == "locustfile"]
    return dict(source.split("=", 1) for source in locustfile["files"])


def test_the_locustfile_judges_by_the_shared_criteria_in_a_stock_locust_image(tmp_path: Path):
    # A stock Locust image has no scrypt_helper: the locustfile then loads the mounted criteria.py.
    for key, path in mounted_files().items():
        shutil.copy(BASE / path, tmp_path / key)
    probe = (
        "import importlib.util, sys\n"
        "sys.modules['scrypt_helper'] = None\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"spec = importlib.util.spec_from_file_location('locustfile', {str(tmp_path / 'locustfile.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(module.LoadTestCriteria.__module__, module.missed.__module__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["criteria", "criteria"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = manifests()
    assert {doc["kind"] for doc in docs} == {"Namespace", "Job", "Service", "Deployment"}
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def container(kind: str) -> dict:
    (app,) = one(kind)["spec"]["template"]["spec"]["containers"]
    return app


def test_the_workers_reach_the_master_and_both_run_the_repository_locustfile():
    master, worker, service = container("Job"), container("Deployment"), one("Service")
    assert service["spec"]["selector"] == one("Job")["spec"]["template"]["metadata"]["labels"]
    args = worker["args"]
    assert args[args.index("--master-host") + 1] == service["metadata"]["name"]
    (port,) = service["spec"]["ports"]
    assert int(args[args.index("--master-port") + 1]) == port["port"]
    assert port["targetPort"] == master["ports"][0]["name"]
    assert "--master" in master["args"]
    assert "--headless" in master["args"]
    for app, kind in ((master, "Job"), (worker, "Deployment")):
        mount = next(m for m in app["volumeMounts"] if m["name"] == "locustfile")
        assert app["args"][app["args"].index("-f") + 1] == f"{mount['mountPath']}/locustfile.py"
        volume = next(
            v for v in one(kind)["spec"]["template"]["spec"]["volumes"] if v["name"] == "locustfile"
        )
        assert volume["configMap"]["name"] == "locustfile"
    # A failed run is the verdict: the Job must not run the test again and hide it.
    assert one("Job")["spec"]["backoffLimit"] == 0


# Locust patches the standard library when imported: its options are read in a process of their own.
LOCUST_ENV_VARS = """
from locust import argument_parser
parser = argument_parser.get_parser()
print("\\n".join(a.env_var for a in parser._actions if getattr(a, "env_var", None)))
"""


def test_every_setting_is_read_by_locust_or_the_locustfile_and_the_master_waits_for_every_worker():
    listed = subprocess.run(
        [sys.executable, "-c", LOCUST_ENV_VARS], capture_output=True, text=True, timeout=60, check=True
    )
    known = set(listed.stdout.split())
    assert "LOCUST_HOST" in known
    locustfile = (ROOT / "loadtest" / "locustfile.py").read_text()
    for name in settings():
        assert name in known or f'env_var="{name}"' in locustfile, name
    assert {"LOCUST_HOST", "LOCUST_MIN_OPS", "LOCUST_MAX_P99_MS", "LOCUST_MAX_FAIL_RATIO"} <= set(settings())
    (replicas,) = kustomization()["replicas"]
    assert replicas["name"] == one("Deployment")["metadata"]["name"]
    assert (
        int(settings()["LOCUST_EXPECT_WORKERS"]) == replicas["count"] == one("Deployment")["spec"]["replicas"]
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_base():
    built = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(BASE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {
        "scrypt-helper-loadtest"
    }
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    (env,) = job["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    generated = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert env["configMapRef"]["name"] in {doc["metadata"]["name"] for doc in generated}
    assert any("class ScryptUser" in doc["data"].get("locustfile.py", "") for doc in generated)
