"""Supply chain: the image's SBOM lists exactly what requirements/runtime.txt pins plus the project,
the licence check passes on it and fails on copyleft or missing licences, and the CA handed to the
build is in no layer of the image."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from packaging.utils import canonicalize_name

from harness.image import CA_BUNDLE, ROOT, client_version, project_version, run_once, run_podman
from harness.licences import acceptable, check, normalise

pytestmark = pytest.mark.timeout(900)

RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def sbom_path(image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sbom") / "sbom.cdx.json"
    done = script("sbom.py", image, "-o", str(path))
    assert done.returncode == 0, done.stderr
    return path


def pins() -> dict[str, str]:
    """requirements/runtime.txt's ``name==version`` pins by canonical name."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", RUNTIME_LOCK.read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def test_the_sbom_lists_the_locked_packages_and_both_distributions_only(sbom_path: Path, image: str):
    sbom = json.loads(sbom_path.read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    listed = {canonicalize_name(c["name"]): c["version"] for c in sbom["components"]}
    expected = {**pins(), "scrypt-helper": project_version(), "scrypt-helper-client": client_version()}
    assert len(expected) > 20
    assert listed == expected  # no pip, no setuptools, none of the SBOM tool's own packages
    subject = sbom["metadata"]["component"]
    assert subject["type"] == "container"
    assert image.startswith(subject["name"])
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", subject["version"])


def test_the_licence_check_passes_on_the_image(sbom_path: Path):
    done = script("licences.py", str(sbom_path))
    assert done.returncode == 0, done.stderr
    assert "every licence acceptable" in done.stdout


@pytest.mark.parametrize(
    ("licenses", "shown"),
    [
        ([{"license": {"id": "GPL-3.0-only"}}], "GPL-3.0-only: copyleft or proprietary"),
        ([], "(no licence): no licence declared"),
        ([{"expression": "MIT AND AGPL-3.0-or-later"}], "MIT AND AGPL-3.0-or-later: copyleft"),
        ([{"license": {"name": "Some Custom Licence"}}], "Some Custom Licence: not a known acceptable"),
    ],
)
def test_the_licence_check_fails_naming_the_package(tmp_path: Path, licenses: list, shown: str):
    sbom = {
        "bomFormat": "CycloneDX",
        "components": [
            {"name": "fine", "version": "1.0", "licenses": [{"license": {"id": "MIT"}}]},
            {"name": "trouble", "version": "2.0", "licenses": licenses},
        ],
    }
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps(sbom))
    done = script("licences.py", str(path))
    assert done.returncode == 1
    assert f"licence check: trouble 2.0: {shown}" in done.stderr
    assert "fine" not in done.stderr


@pytest.mark.parametrize(
    ("expression", "verdict"),
    [
        ("MIT", True),
        ("mit", True),
        ("Apache-2.0 OR GPL-2.0-or-later", True),
        ("Apache-2.0 AND BSD-2-Clause", True),
        ("(MIT OR GPL-3.0-only) AND PSF-2.0", True),
        ("LGPL-2.1+", True),
        ("GPL-2.0+", False),
        ("MIT AND GPL-3.0-only", False),
        ("AGPL-3.0-only", False),
        ("SSPL-1.0", False),
        ("LicenseRef-proprietary", False),
        ("GPL-2.0-only WITH Classpath-exception-2.0", True),
        ("GPL-3.0-only WITH Autoconf-exception-3.0", False),
    ],
)
def test_spdx_expressions(expression: str, verdict: bool):
    assert acceptable(expression) is verdict


def test_a_malformed_expression_is_an_error():
    for expression in ("MIT OR", "(MIT", "MIT Apache-2.0"):
        with pytest.raises(ValueError, match="licence expression"):
            acceptable(expression)


def test_classifiers_and_common_names_become_spdx_ids():
    assert normalise("License :: OSI Approved :: Apache Software License") == "Apache-2.0"
    assert normalise("License :: OSI Approved :: GNU General Public License v3 (GPLv3)") == "GPL-3.0-only"
    assert normalise("  MIT   License ") == "MIT"
    component = {
        "name": "dual",
        "licenses": [
            {"license": {"id": "MIT"}},
            {"license": {"name": "License :: OSI Approved"}},  # a qualifier, not a licence
            {"license": {"name": "License :: OSI Approved :: GNU General Public License v2 (GPLv2)"}},
        ],
    }
    (problem,) = check({"components": [component]})  # every declared licence must pass
    assert problem.licence == "GPL-2.0-only"
    assert check({"components": [component]}, reviewed={"dual": "MIT"}) == []


def layers(archive: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """Each layer tarball in a docker-archive, by name."""
    with tarfile.open(archive) as outer:
        for member in outer:
            if member.isfile() and member.name.endswith(".tar"):
                blob = outer.extractfile(member)
                assert blob is not None
                yield member.name, blob


def contains(stream: IO[bytes], markers: list[bytes]) -> list[bytes]:
    """The markers found anywhere in ``stream``, read in chunks."""
    found: set[bytes] = set()
    overlap = max((len(m) for m in markers), default=0)
    tail = b""
    while chunk := stream.read(1 << 24):
        window = tail + chunk
        found |= {m for m in markers if m in window}
        tail = window[-overlap:] if overlap else b""
    return sorted(found)


def certificates(bundle: str) -> set[str]:
    return set(re.findall(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", bundle))


def test_the_build_secret_is_in_no_layer(image: str, tmp_path: Path):
    if not CA_BUNDLE.is_file():
        pytest.skip(f"no {CA_BUNDLE} here: the build had no CA to hand to pip")
    image_bundle = run_once(image, "/etc/ssl/certs/ca-certificates.crt", entrypoint="cat").stdout
    # The certificates the build was handed that the image does not trust of itself (a proxy's).
    extra = certificates(CA_BUNDLE.read_text()) - certificates(image_bundle)
    markers = [re.sub(r"\s", "", cert.split("-----")[2])[:64].encode() for cert in extra]
    archive = tmp_path / "image.tar"
    run_podman("save", "--format", "docker-archive", "--output", str(archive), image, timeout=600)
    seen = 0
    for name, blob in layers(archive):
        seen += 1
        with tarfile.open(fileobj=blob) as layer:
            paths = layer.getnames()
        assert not [p for p in paths if "pip-ca" in p or p.lstrip("./").startswith("run/secrets/")], name
        blob.seek(0)
        assert contains(blob, markers) == [], name
    assert seen >= 3
    history = run_podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history
