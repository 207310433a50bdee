"""A CycloneDX SBOM of an image's Python environment (/opt/venv), made inside a throwaway container.

cyclonedx-py runs on the image's own interpreter, isolated (``python3 -I``), from a read-only mount
that holds only the tool and its dependencies, copied from this interpreter's environment; it reads
the packages of /opt/venv, never its own. The container has no network and a read-only root.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.image import ULIMITS, inspect_image, podman

TOOL = "cyclonedx-bom"
TOOL_MOUNT = "/sbom-tool"
VENV_PYTHON = "/opt/venv/bin/python3"
SPEC_VERSION = "1.6"


def distribution_closure(
    name: str, extras: frozenset[str] = frozenset()
) -> list[importlib.metadata.Distribution]:
    """The installed distribution ``name`` and every one it requires here, extras followed."""
    found: dict[str, tuple[importlib.metadata.Distribution, frozenset[str]]] = {}
    todo = [(name, extras)]
    while todo:
        wanted, wanted_extras = todo.pop()
        dist = importlib.metadata.distribution(wanted)
        key = canonicalize_name(dist.metadata["Name"])
        if key in found and wanted_extras <= found[key][1]:
            continue
        wanted_extras |= found.get(key, (dist, frozenset()))[1]
        found[key] = (dist, wanted_extras)
        environments = [{"extra": extra} for extra in wanted_extras or {""}]
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return [dist for dist, _ in found.values()]


def copy_tool(into: Path) -> None:
    """Copy the SBOM tool's distributions (their site-packages files) into ``into``."""
    for dist in distribution_closure(TOOL):
        for file in dist.files or []:
            if ".." in file.parts or "__pycache__" in file.parts:
                continue  # scripts beside the environment, and bytecode of another interpreter
            target = into / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.locate_file(file), target)


def engine_for(image: str) -> list[str]:
    """The container engine whose store holds ``image``: podman if it has it, else docker."""
    if (
        shutil.which("podman")
        and subprocess.run(podman("image", "exists", image), check=False).returncode == 0
    ):
        return podman()
    if shutil.which("docker"):
        return ["docker"]
    raise FileNotFoundError(f"{image} is in no podman store here and docker is not installed")


def image_reference(engine: list[str], image: str) -> tuple[str, str]:
    """The image's name (without tag or digest) and its digest, else its id."""
    if engine[0] == "podman":
        found = inspect_image(image)
    else:
        done = subprocess.run(
            [*engine, "image", "inspect", image], capture_output=True, text=True, check=True
        )
        (found,) = json.loads(done.stdout)
    repository = image.split("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    digests = [d.split("@", 1)[1] for d in found.get("RepoDigests") or [] if d.startswith(repository + "@")]
    return repository, digests[0] if digests else found.get("Digest") or found["Id"]


def make_sbom(image: str, engine: list[str] | None = None) -> dict:
    """The SBOM of ``image``'s /opt/venv, its main component the image itself (name and digest)."""
    engine = engine or engine_for(image)
    arguments = ["cyclonedx-py", "environment", "--sv", SPEC_VERSION, "--of", "JSON", "-o", "-", VENV_PYTHON]
    program = (
        f"import runpy, sys; sys.path.insert(0, {TOOL_MOUNT!r}); sys.argv = {arguments!r}; "
        "runpy.run_module('cyclonedx_py', run_name='__main__', alter_sys=True)"
    )
    limits = ULIMITS if engine[0] == "podman" else ()
    with tempfile.TemporaryDirectory(prefix="sbom-tool-") as tool:
        Path(tool).chmod(0o755)  # the image's unprivileged user reads it
        copy_tool(Path(tool))
        done = subprocess.run(
            [
                *engine,
                "run",
                "--rm",
                *limits,
                "--network",
                "none",
                "--read-only",
                "--volume",
                f"{tool}:{TOOL_MOUNT}:ro",
                "--entrypoint",
                "python3",
                image,
                "-I",
                "-c",
                program,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"cyclonedx-py failed in {image} ({done.returncode}):\n{done.stderr}")
    sbom = json.loads(done.stdout)
    name, digest = image_reference(engine, image)
    sbom["metadata"]["component"] = {
        "type": "container",
        "bom-ref": f"{name}@{digest}",
        "name": name,
        "version": digest,
    }
    return sbom
