"""deploy/k8s/logging.yaml: the log shipper's configuration is accepted by syslog-ng itself, reads only
scrypt-helper's container logs, and the DaemonSet mounts what the configuration reads and writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "logging.yaml"
SYSLOG_NG = shutil.which("syslog-ng") or (
    "/usr/sbin/syslog-ng" if os.access("/usr/sbin/syslog-ng", os.X_OK) else None
)
ENV = {
    "OPENSEARCH_URL": "https://search.example.net:9200",
    "OPENSEARCH_USER": "u",
    "OPENSEARCH_PASSWORD": "p",
}


def documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def config() -> str:
    return documents()["ConfigMap"]["data"]["syslog-ng.conf"]


def syntax_check(text: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "syslog-ng.conf"
    path.write_text(text)
    return subprocess.run(
        [SYSLOG_NG, "--syntax-only", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", ""), **env},
        check=False,
    )


@pytest.mark.skipif(
    SYSLOG_NG is None,
    reason="syslog-ng is not installed (apt-get install syslog-ng-core syslog-ng-mod-http syslog-ng-scl)",
)
def test_syslog_ng_accepts_the_configuration_and_refuses_a_broken_one(tmp_path: Path):
    result = syntax_check(config(), tmp_path, ENV)
    assert result.returncode == 0, result.stderr
    # The check reads option names: a misspelt one fails, so the pass above means something.
    broken = syntax_check(config().replace("batch-lines(", "batch-line("), tmp_path, ENV)
    assert broken.returncode != 0


def test_the_daemonset_gives_the_configuration_what_it_reads_and_writes():
    docs = documents()
    text = config()
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True
    assert 'base-dir("/var/log/containers")' in text
    # The disk buffer and the persist file (read positions) live on the host path that survives the pod.
    assert 'dir("/var/lib/syslog-ng")' in text
    assert "/var/lib/syslog-ng/syslog-ng.persist" in agent["args"]
    assert "/var/lib/syslog-ng" in mounts
    assert mounts["/etc/syslog-ng/syslog-ng.conf"]["subPath"] == "syslog-ng.conf"
    # Every variable the configuration reads is set from the Secret.
    used = set(re.findall(r"`([A-Z_]+)`", text))
    assert used == set(ENV)
    assert {e["name"] for e in agent["env"] if "secretKeyRef" in e["valueFrom"]} == used


def test_only_scrypt_helper_containers_are_read():
    pattern = re.search(r'filename-pattern\("([^"]+)"\)', config()).group(1)
    regex = re.compile(pattern.replace(".", r"\.").replace("*", ".*") + "$")
    cid = "0" * 64
    assert regex.match(f"scrypt-helper-7d9f8-abcde_scrypt-helper_scrypt-helper-{cid}.log")
    assert not regex.match(f"scrypt-helper-redis-0_scrypt-helper_redis-{cid}.log")
    assert not regex.match(f"ingress-nginx-controller-x_ingress-nginx_controller-{cid}.log")
