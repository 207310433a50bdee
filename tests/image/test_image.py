"""The built image, run as a real container on the host's network and spoken to over real HTTP:
right answers, an unprivileged process on a read-only root, a SIGTERM that drains, silent logs,
a bad setting refused in one line, and the metadata and contents the Dockerfile promises."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterator

import pytest

from harness.image import Container, inspect_image, run_once, run_podman
from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper.engines.vectors import PICL, PICL_PARAMS
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json
from tests.drain import assert_sigterm_drains

# A first session may build the image (debootstrap and two stages: minutes).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def service(image: str) -> Iterator[Container]:
    """One container for the module: the production and the small parameter set, no rate limits,
    debug logging (the most the service ever logs)."""
    env = {
        "SCRYPT_HELPER_ALLOWED_PARAMS": allowed_json(PICL_PARAMS, SMALL),
        "SCRYPT_HELPER_RULES": "",
        "SCRYPT_HELPER_WORKERS": "2",
        "SCRYPT_HELPER_LOG_LEVEL": "DEBUG",
    }
    with Container(image, env=env) as container:
        yield container


def scrypt(container: Container, params, data: bytes) -> str:
    response = http_post(container.url, json=request_body(params, data), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["output"]


def test_the_known_vector_on_the_production_parameters(service: Container):
    vector = PICL[0]
    assert vector.password.hex() == "f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd"
    assert scrypt(service, PICL_PARAMS, vector.password) == (
        "5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5"
    )


def test_random_inputs_match_hashlib(service: Container):
    for _ in range(8):
        data = os.urandom(32)
        expected = hashlib.scrypt(
            data, salt=SMALL.salt, n=SMALL.n, r=SMALL.r, p=SMALL.p, dklen=SMALL.buflen, maxmem=2**26
        )
        assert scrypt(service, SMALL, data) == expected.hex()


def test_the_service_runs_as_10001_on_a_read_only_root(service: Container):
    status = service.exec("cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.MULTILINE), status
    assert re.search(r"^Gid:\s+10001\s+10001\s+10001\s+10001$", status, re.MULTILINE), status
    assert "scrypt-helper serve" in service.exec("cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    for path in ("/probe", "/app/probe", "/opt/venv/probe"):
        # As root inside, so that only the read-only mount can refuse it.
        write = service.exec("sh", "-c", f"echo x > {path}", user="0")
        assert write.returncode != 0, path
        assert "Read-only file system" in write.stderr, write.stderr


def test_the_healthcheck_and_version_json(service: Container, image: str):
    assert run_podman("healthcheck", "run", service.name, check=False).returncode == 0
    version = http_get(f"{service.url}/__version__", timeout=5).json()
    labels = inspect_image(image)["Config"]["Labels"]
    assert version["commit"] == labels["org.opencontainers.image.revision"]
    assert version["version"] == labels["org.opencontainers.image.version"]
    assert version["source"] == labels["org.opencontainers.image.source"]


def test_metrics_are_served_on_the_metrics_port(service: Container):
    metrics = http_get(f"{service.metrics_url}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "scrypt_helper_in_flight" in metrics.text


def test_no_input_or_output_reaches_the_logs(service: Container):
    sent = []
    for params in (SMALL, PICL_PARAMS):
        data = os.urandom(32)
        sent += [data.hex(), scrypt(service, params, data)]
    logs = service.logs()
    assert logs.count('"request.summary"') >= 2, logs[-2000:]  # the requests were logged...
    lowered = logs.lower()
    for secret in sent:  # ...but not what they carried
        assert secret not in lowered
        assert secret[:16] not in lowered


@pytest.mark.parametrize(
    ("env", "args"),
    [({"SCRYPT_HELPER_WORKERS": "abc"}, ()), ({}, ("serve", "--workers", "abc"))],
    ids=["variable", "flag"],
)
def test_a_bad_setting_stops_it_with_one_clear_line(image: str, env: dict[str, str], args: tuple[str, ...]):
    container = Container(image, env=env, args=args).start()
    try:
        assert container.wait(timeout=60) == 2
        assert container.logs().splitlines() == [
            "scrypt-helper: error: SCRYPT_HELPER_WORKERS / --workers: "
            "Input should be a valid integer, unable to parse string as an integer (got 'abc')"
        ]
    finally:
        container.remove()


async def test_sigterm_answers_every_request_in_flight_then_exits_0(image: str):
    env = {
        "SCRYPT_HELPER_ENGINE": "libsodium",  # one lane: the six hashes queue behind each other
        "SCRYPT_HELPER_WORKERS": "1",
        "SCRYPT_HELPER_QUEUE_SIZE": "16",
        "SCRYPT_HELPER_MAX_QUEUE_WAIT": "30",
        "SCRYPT_HELPER_DRAIN_SECONDS": "1",
        "SCRYPT_HELPER_RULES": "",
    }
    container = Container(image, env=env)
    await asyncio.to_thread(container.__enter__)
    try:
        await assert_sigterm_drains(container, f"{container.metrics_url}/__heartbeat__")
    finally:
        await asyncio.to_thread(container.__exit__, None, None, None)


def test_the_image_declares_what_it_runs(image: str):
    found = inspect_image(image)
    config = found["Config"]
    labels = config["Labels"]
    for key in ("source", "revision", "version", "title", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.licenses"] == "MPL-2.0"
    assert set(config["ExposedPorts"]) == {"8080/tcp", "9100/tcp"}
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["scrypt-helper"]
    assert config["Cmd"] == ["serve"]
    assert config["StopSignal"] == "SIGTERM"
    assert "SCRYPT_HELPER_HOST=0.0.0.0" in config["Env"]
    check = found["Healthcheck"]  # podman lists it beside Config
    assert check["Test"][:2] == ["CMD", "python3"]
    assert "__lbheartbeat__" in " ".join(check["Test"])


def test_the_image_has_no_compiler_no_headers_and_no_pip(image: str):
    probe = (
        "import os, shutil; "
        "tools = [t for t in ('cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'ld', 'as', 'pip', 'pip3') "
        "if shutil.which(t)]; "
        "headers = [h for h in ('/usr/include/openssl', '/usr/include/sodium.h') if os.path.exists(h)]; "
        "print(tools, headers)"
    )
    done = run_once(image, "-c", probe, entrypoint="python3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] []"


def test_the_native_engine_runs_in_the_image(image: str):
    done = run_once(image, "engines", "--tiny", "--seconds", "0.1")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["native"][2] == "pass"
