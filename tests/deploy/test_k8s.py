"""deploy/k8s: every manifest validates against the Kubernetes schemas (strict), and the Deployment's
numbers agree with the service: memory bound, probes, drain timing, non-root, valid settings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scrypt_helper.abuse.identity import TrustedProxies
from scrypt_helper.abuse.rules import parse_rules
from scrypt_helper.core.config import Settings
from scrypt_helper.engines.vectors import PICL_PARAMS

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
NGINX = K8S_DIR.parent / "nginx"
DOCKERFILE = K8S_DIR.parent / "docker" / "Dockerfile"
# The oldest Kubernetes minor still in upstream support when this was written, and the newest schema.
VERSIONS = ("1.31.0", "1.37.0")
LANES = {"native": 8, "libsodium": 1, "hashlib": 1}


IMAGE = "ghcr.io/mozilla-services/scrypt-helper"
# Kinds of the Prometheus Operator's CRDs, outside the base API: applied on their own.
OPERATOR_MANIFESTS = {"servicemonitor.yaml"}


def kustomization() -> dict:
    return yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[tuple[str, dict]]:
    """Every document of the base: the files kustomization.yaml lists."""
    return [(name, doc) for name in kustomization()["resources"] for doc in documents(K8S_DIR / name)]


def one(kind: str, name: str = "scrypt-helper") -> dict:
    (doc,) = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def explicit_origins(origins: tuple[str, ...]) -> bool:
    """Named https origins only: the default, *, would let any page make browsers hash."""
    return bool(origins) and all(origin.startswith("https://") and "*" not in origin for origin in origins)


def mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, quantity
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str):
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)"
    )
    docs = manifests()
    assert {d["kind"] for _, d in docs} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Ingress",
        "NetworkPolicy",
        "Namespace",
    }
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def container() -> dict:
    (app,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return app


def env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container()["env"] if "value" in e}


def test_resources_match_the_memory_bound_of_the_workers_and_engine():
    settings = env()
    workers = int(settings["SCRYPT_HELPER_WORKERS"])
    processes = int(settings["SCRYPT_HELPER_PROCESSES"])
    lanes = LANES[settings["SCRYPT_HELPER_ENGINE"]]
    # The workers' hash buffers, and about 100 MiB for each front process's interpreter and app.
    bound_mib = workers * lanes * PICL_PARAMS.romix_bytes // 2**20 + 100 * processes
    resources = container()["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert mebibytes(resources["limits"]["memory"]) >= bound_mib
    assert mebibytes(resources["limits"]["memory"]) <= bound_mib * 1.25  # not wildly oversized
    assert int(resources["limits"]["cpu"]) == workers  # one worker per core of the limit


def test_probes_and_the_drain_timing():
    app = container()
    assert app["readinessProbe"]["httpGet"]["path"] == "/__lbheartbeat__"
    assert app["startupProbe"]["httpGet"]["path"] == "/__lbheartbeat__"
    assert app["livenessProbe"]["httpGet"]["path"] == "/__heartbeat__"
    # Readiness tests the port the ingress uses; liveness the private one, which no client can fill.
    assert app["readinessProbe"]["httpGet"]["port"] == app["startupProbe"]["httpGet"]["port"] == "http"
    assert app["livenessProbe"]["httpGet"]["port"] == "metrics"
    ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    assert int(env()["SCRYPT_HELPER_METRICS_PORT"]) == ports["metrics"]
    pre_stop = app["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    settings = env()
    drain = float(settings["SCRYPT_HELPER_DRAIN_SECONDS"])
    shutdown = float(settings["SCRYPT_HELPER_SHUTDOWN_TIMEOUT"])
    # The readiness probe notices the 503 well within the drain.
    probe = app["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] <= drain
    grace = one("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(pre_stop[1]) + drain + shutdown


def test_the_pod_runs_unprivileged_on_a_read_only_root():
    pod = one("Deployment")["spec"]["template"]["spec"]
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert user
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user.group(1))
    assert pod["automountServiceAccountToken"] is False
    context = container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_the_settings_are_valid_for_the_service():
    settings = env()
    rules = one("ConfigMap", "scrypt-helper-rules")["data"]["rules.txt"]
    assert len(parse_rules(rules)) == 6
    mount = container()["volumeMounts"][0]["mountPath"]
    assert settings.pop("SCRYPT_HELPER_RULES_FILE") == f"{mount}/rules.txt"
    secret = next(e for e in container()["env"] if e["name"] == "SCRYPT_HELPER_REDIS_URL")
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "scrypt-helper-redis", "key": "url"}
    fields = {name.removeprefix("SCRYPT_HELPER_").lower(): value for name, value in settings.items()}
    parsed = Settings(**fields, rules=rules, redis_url="redis://redis:6379/0")
    assert parsed.trusted_proxies == TrustedProxies(hops=1)
    assert explicit_origins(parsed.cors_origins)
    assert parsed.metrics_port == 9100
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports == {"http": 8080, "metrics": 9100}


def test_service_hpa_pdb_and_ingress_point_at_the_pods():
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert one("Deployment")["spec"]["selector"]["matchLabels"] == labels
    assert one("Service")["spec"]["selector"] == labels
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "scrypt-helper",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 3
    strategy = one("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0
    ingress = one("Ingress")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert sorted(paths) == ["/", "/__lbheartbeat__", "/__version__"]
    annotations = ingress["metadata"]["annotations"]
    assert "non_idempotent" in annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"]
    # The nodes trust the controller's hop, so their per-client connection cap is off: the
    # controller's own limit per client address replaces it.
    assert int(annotations["nginx.ingress.kubernetes.io/limit-connections"]) > 0
    policy = one("NetworkPolicy", "scrypt-helper-redis")
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == labels


def test_the_kustomization_lists_every_base_manifest_and_pins_the_image():
    listed = set(kustomization()["resources"])
    assert (
        listed == {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"} - OPERATOR_MANIFESTS
    )
    # The Deployment names the image without a version; the kustomization's entry says which.
    assert container()["image"] == IMAGE
    (entry,) = kustomization()["images"]
    assert entry["name"] == IMAGE
    assert set(entry) <= {"name", "newTag", "digest"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_an_overlay_runs_the_promoted_digest(tmp_path: Path):
    digest = "sha256:" + "0123456789abcdef" * 4
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_DIR, tmp_path)],  # kustomize takes no absolute base
        "images": [{"name": IMAGE, "digest": digest}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc is not None]
    assert len(docs) == len(manifests())
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "scrypt-helper"
    ]
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    assert app["image"] == f"{IMAGE}@{digest}"
    # Only the service's image is pinned; the others keep theirs.
    others = [c["image"] for d in docs if d is not deployment for c in pod_containers(d)]
    assert others
    assert not any(image.startswith(IMAGE) for image in others)


def pod_containers(doc: dict) -> list[dict]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def test_a_service_monitor_scrapes_the_metrics_port_of_the_nodes_only():
    (monitor,) = documents(K8S_DIR / "servicemonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    spec = monitor["spec"]
    assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
    services = [doc for _, doc in manifests() if doc["kind"] == "Service"]
    assert len(services) >= 2  # the nodes' and Redis's: it must pick the nodes' alone
    (scraped,) = [svc for svc in services if selects(spec["selector"], svc["metadata"].get("labels", {}))]
    assert scraped["metadata"]["name"] == "scrypt-helper"
    assert spec["namespaceSelector"] == {"matchNames": [scraped["metadata"]["namespace"]]}
    assert monitor["metadata"]["namespace"] == scraped["metadata"]["namespace"]
    (endpoint,) = spec["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("metrics", "/metrics", "http")
    # The Service's port of that name leads to the container's metrics port, where the node serves /metrics.
    (port,) = [p for p in scraped["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert pod_ports("scrypt-helper")[port["targetPort"]] == int(env()["SCRYPT_HELPER_METRICS_PORT"]) == 9100
    assert re.fullmatch(r"\d+s", endpoint["interval"])
    assert int(endpoint["scrapeTimeout"][:-1]) < int(endpoint["interval"][:-1])


# Who may connect where, by NetworkPolicy semantics: a pod selected by no policy accepts anything;
# otherwise a connection needs a rule of one of its policies that allows both its source and its port.
NAMESPACE = {"kubernetes.io/metadata.name": "scrypt-helper"}
SOURCES = {
    "ingress controller": (
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    ),
    "another pod of ingress-nginx": (
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"app.kubernetes.io/name": "ingress-nginx-admission"},
    ),
    "prometheus": ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"}),
    "a pod of another namespace": ({"kubernetes.io/metadata.name": "default"}, {"app": "anything"}),
    "another pod of this namespace": (NAMESPACE, {"app": "debug"}),
}


def pod_labels(deployment: str) -> dict[str, str]:
    return one("Deployment", deployment)["spec"]["template"]["metadata"]["labels"]


def pod_ports(deployment: str) -> dict[str, int]:
    (app,) = one("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return {port["name"]: port["containerPort"] for port in app["ports"]}


def selects(selector: dict, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "this check understands matchLabels only"
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict, namespace: dict[str, str], labels: dict[str, str]) -> bool:
    assert set(peer) <= {"namespaceSelector", "podSelector"}, "this check understands no ipBlock"
    # A podSelector alone selects pods of the policy's own namespace.
    in_namespace = (
        selects(peer["namespaceSelector"], namespace)
        if "namespaceSelector" in peer
        else (namespace == NAMESPACE)
    )
    return in_namespace and selects(peer.get("podSelector", {}), labels)


def may_connect(source: tuple[dict, dict], target: str, port_name: str) -> bool:
    labels, port = pod_labels(target), pod_ports(target)[port_name]
    policies = [
        doc["spec"]
        for _, doc in manifests()
        if doc["kind"] == "NetworkPolicy"
        and "Ingress" in doc["spec"]["policyTypes"]
        and selects(doc["spec"]["podSelector"], labels)
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy.get("ingress", []):
            sources = rule.get("from")
            ports = rule.get("ports")
            source_ok = sources is None or any(peer_matches(peer, *source) for peer in sources)
            port_ok = ports is None or any(
                p.get("protocol", "TCP") == "TCP" and p.get("port") in (port_name, port) for p in ports
            )
            if source_ok and port_ok:
                return True
    return False


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"),
    [
        ("ingress controller", "scrypt-helper", "http", True),
        ("ingress controller", "scrypt-helper", "metrics", False),
        ("ingress controller", "scrypt-helper-redis", "redis", False),
        ("another pod of ingress-nginx", "scrypt-helper", "http", False),
        ("prometheus", "scrypt-helper", "metrics", True),
        ("prometheus", "scrypt-helper", "http", False),
        ("prometheus", "scrypt-helper-redis", "redis", False),
        ("a pod of another namespace", "scrypt-helper", "http", False),
        ("a pod of another namespace", "scrypt-helper", "metrics", False),
        ("a pod of another namespace", "scrypt-helper-redis", "redis", False),
        ("another pod of this namespace", "scrypt-helper", "http", False),
        ("another pod of this namespace", "scrypt-helper-redis", "redis", False),
        ("scrypt-helper", "scrypt-helper-redis", "redis", True),
        ("scrypt-helper-redis", "scrypt-helper", "http", False),
    ],
)
def test_network_policies_let_only_the_ingress_reach_the_service_and_only_the_nodes_reach_redis(
    source: str, target: str, port: str, allowed: bool
):
    origin = SOURCES[source] if source in SOURCES else (NAMESPACE, pod_labels(source))
    assert may_connect(origin, target, port) is allowed


def test_every_pod_of_the_namespace_is_covered_by_a_deny_by_default_policy():
    policies = [doc for _, doc in manifests() if doc["kind"] == "NetworkPolicy"]
    assert {doc["metadata"]["namespace"] for doc in policies} == {"scrypt-helper"}
    (default,) = [doc["spec"] for doc in policies if doc["spec"]["podSelector"] == {}]
    assert default["policyTypes"] == ["Ingress"]
    assert "ingress" not in default


def nginx_limits() -> dict[str, str]:
    """deploy/nginx's first-line limits: rate and burst of POST / per client, connections, body size."""
    conf = (NGINX / "nginx.conf").read_text() + (NGINX / "scrypt-helper" / "http.conf").read_text()

    def find(pattern: str) -> str:
        match = re.search(pattern, conf)
        assert match, pattern
        return match[1]

    return {
        "rate": find(r"zone=scrypt_post:\S+ rate=(\d+)r/s;"),
        "burst": find(r"limit_req zone=scrypt_post burst=(\d+)"),
        "connections": find(r"limit_conn per_addr (\d+);"),
        "body": find(r"client_max_body_size (\S+);"),
    }


def test_the_ingress_limits_mirror_deploy_nginx():
    annotations = one("Ingress")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    limits = nginx_limits()
    rps = int(annotations[prefix + "limit-rps"])
    assert rps == int(limits["rate"])
    assert rps * int(annotations[prefix + "limit-burst-multiplier"]) == int(limits["burst"])
    assert annotations[prefix + "limit-connections"] == limits["connections"]
    assert annotations[prefix + "proxy-body-size"] == limits["body"]
