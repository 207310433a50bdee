"""Shared fixtures: small parameter sets and real servers on free ports."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import scrypt_helper
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer
from scrypt_helper.core.config import allowed_params_json as allowed_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS

# Where the parameter values do not matter, hash 128 KiB instead of 64 MiB.
SMALL = ScryptParams(salt=b"scrypt-helper-tests", n=1024, r=8, p=1, buflen=32)


# Each directory of tests/ is a tier, marked with its name (registered in pyproject.toml), so a run
# can pick tiers: ``pytest -m quick`` (scripts/test --quick) runs the tiers that need no server,
# ``pytest -m "not image"`` everything but the container image.
TIERS = ("unit", "web", "engines", "fuzz", "integration", "cluster", "deploy", "image", "loadtest")
# The quick tiers: logic in process, and the engines' known answers against hashlib and libsodium.
QUICK = ("unit", "web")
QUICK_MODULES = ("tests/engines/test_engines.py",)
# The order parallel workers take the test files in (pytest-xdist keeps it where it is given
# --no-loadscope-reorder, as scripts/test does; otherwise it takes the files with most tests first).
# The files that take longest start first, so that no worker is left with one of them at the end.
# The tiers that mostly wait on containers (the release gate, the image) come next, by when the
# image's background build is done, beside the CPU-bound files the other workers still run; then
# the rest, tier by tier, the quick ones last.
LONGEST_FIRST = (
    "tests/integration/test_bench.py",  # about two and a half minutes on two cores: every bench mode
    "tests/cluster/test_harness_figures.py",
    "tests/integration/test_processes.py",
)
RUN_ORDER = ("loadtest", "image", "cluster", "integration", "engines", "fuzz", "deploy", "unit", "web")


def tier_of(item: pytest.Item) -> str | None:
    relative = item.path.relative_to(Path(__file__).parents[1])
    return relative.parts[1] if len(relative.parts) > 2 else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parents[1]
    for item in items:
        tier = tier_of(item)
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if tier in QUICK or item.path.relative_to(root).as_posix() in QUICK_MODULES:
            item.add_marker(pytest.mark.quick)
    first = {path: index for index, path in enumerate(LONGEST_FIRST)}
    rank = {tier: index for index, tier in enumerate(RUN_ORDER)}

    def run_rank(item: pytest.Item) -> tuple[int, int]:
        path = item.path.relative_to(root).as_posix()
        if path in first:
            return (0, first[path])
        return (1, rank.get(tier_of(item) or "", len(RUN_ORDER)))

    items.sort(key=run_rank)  # stable: files stay whole


def pytest_report_header() -> str:
    return f"scrypt_helper under test: {Path(scrypt_helper.__file__).parent}"


def local_node(**flags: object) -> LocalServer:
    """A LocalServer without rate-limit rules unless the test gives some."""
    return LocalServer(**{"rules": "", **flags})


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """One node on the default engine allowing the production and the small parameter set.

    Its queue holds every test's requests: each job may wait 30 s, and its hash workers run at the
    event loop's priority, so that the other test processes beside it on a busy machine (parallel
    workers) slow its hashes rather than starve them into 503s."""
    with local_node(
        allowed_params=allowed_json(PICL_PARAMS, SMALL),
        queue_size=100,
        max_queue_wait=30,
        worker_niceness=0,
        log_level="DEBUG",
    ) as node:
        yield node


@pytest.fixture
def redis_server() -> Iterator[LocalRedis]:
    """A fresh real Redis; the test is skipped only where no redis-server binary exists."""
    server = LocalRedis()
    if server.binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def random_input() -> bytes:
    return os.urandom(32)


def assert_error(response: httpx.Response, status: int, errno: int, message: str | None = None) -> None:
    """An error in the documented JSON shape, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert set(document) == {"code", "errno", "error", "message"}
    assert (document["code"], document["errno"]) == (status, errno)
    if message is not None:
        assert document["message"] == message


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
