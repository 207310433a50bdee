"""The client library and its commands against real helper nodes: answers, errors, retries, fallback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import (
    AsyncClient,
    Client,
    HelperError,
    HelperUnavailable,
    async_stretch,
    request_body,
    stretch,
)
from tests.conftest import SMALL, allowed_json, local_node

EMAIL = "andré@example.org"
PASSWORD = "pässwörd"  # noqa: S105 - the published test vector
K1 = bytes.fromhex("f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd")
K2 = bytes.fromhex("5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5")
STRETCHED = "c16d46c31bee242cb31f916e9e38d60b76431d3f5304549cc75ae4bc20c7108c"


def expected(data: bytes, params: ScryptParams = SMALL) -> bytes:
    """The reference answer from hashlib."""
    return hashlib.scrypt(
        data, salt=params.salt, n=params.n, r=params.r, p=params.p, dklen=params.buflen, maxmem=1 << 28
    )


def metric(url: str, name: str) -> float:
    text = http_get(url + "/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def small_node(**flags: object) -> LocalServer:
    return local_node(
        engine="hashlib", allowed_params=allowed_json(SMALL), queue_size=10, drain_seconds=0, **flags
    )


def nowhere() -> str:
    """A helper URL with nothing listening."""
    return f"http://127.0.0.1:{free_port()}"


def scrypt_helper(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrypt_helper", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def nodes() -> Iterator[dict[str, LocalServer]]:
    """The nodes this module talks to, started in parallel (each takes seconds to start)."""
    servers = {
        # the production and the small set, no limits
        "main": local_node(
            engine="libsodium",
            allowed_params=allowed_json(PICL_PARAMS, SMALL),
            queue_size=20,
            drain_seconds=0,
        ),
        # 429 with Retry-After: 1 to the second hash within a second
        "limited": small_node(rules="scrypt : ip : 1 : 1s : 1s : block"),
        # 429 with Retry-After: 1 to every hash after the first, forever
        "blocking": small_node(rules="scrypt : ip : 1 : 1h : 1s : block"),
        # one worker and no queue: concurrent production hashes get 503
        "overloaded": local_node(
            engine="libsodium",
            workers=1,
            queue_size=0,
            max_queue_wait=1,
            drain_seconds=0,
            allowed_params=allowed_json(PICL_PARAMS),
        ),
    }
    with ExitStack() as stack:
        for node in servers.values():
            stack.callback(node.stop)
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(LocalServer.start, servers.values()))
        http_post(servers["blocking"].url + "/", json=request_body(SMALL, b"first"))  # its one allowed hash
        yield servers


@pytest.fixture
def server(nodes: dict[str, LocalServer]) -> LocalServer:
    return nodes["main"]


@pytest.fixture
def always_blocking(nodes: dict[str, LocalServer]) -> LocalServer:
    return nodes["blocking"]


# -- answers -----------------------------------------------------------------------------------------


def test_hash_equals_hashlib(server):
    data = os.urandom(32)
    with Client(server.url, params=SMALL, fallback=False) as client:
        assert client.hash(data) == expected(data)
        assert client.hash(b"\x00") == expected(b"\x00")


async def test_async_hash_equals_hashlib(server):
    inputs = [os.urandom(16) for _ in range(4)]
    async with AsyncClient(server.url, params=SMALL, fallback=False) as client:
        outputs = await asyncio.gather(*(client.hash(data) for data in inputs))
    assert outputs == [expected(data) for data in inputs]


def test_published_stretch_vector_through_a_node_with_the_production_parameters(server):
    with Client(server.url, fallback=False) as client:
        assert client.hash(K1) == K2
    assert stretch(EMAIL, PASSWORD, server.url).hex() == STRETCHED


async def test_async_published_stretch_vector_through_a_node(server):
    async with AsyncClient(server.url, fallback=False) as client:
        assert await client.hash(K1) == K2
    assert (await async_stretch(EMAIL, PASSWORD, server.url)).hex() == STRETCHED


# -- errors that are not retried ---------------------------------------------------------------------------


def test_bad_request_raises_helper_error_at_once_without_the_input(server):
    not_allowed = ScryptParams(salt=b"other-salt", n=1024, r=8, p=1, buflen=32)
    secret = os.urandom(32)
    began = time.monotonic()
    with Client(server.url, params=not_allowed) as client, pytest.raises(HelperError) as caught:
        client.hash(secret)
    assert time.monotonic() - began < 0.5
    assert (caught.value.status, caught.value.errno) == (400, 107)
    assert caught.value.message == "Invalid parameter in request body: salt"
    assert secret.hex() not in str(caught.value)


async def test_async_bad_request_raises_helper_error(server):
    async with AsyncClient(server.url, params=SMALL) as client:
        with pytest.raises(HelperError) as caught:
            await client.hash(b"")
    assert (caught.value.status, caught.value.errno) == (400, 107)
    assert caught.value.message == "Invalid parameter in request body: input"


# -- refusals that are retried -----------------------------------------------------------------------------


def test_429_is_retried_after_retry_after_then_succeeds(nodes):
    node = nodes["limited"]
    with Client(node.url, params=SMALL, fallback=False) as client:
        assert client.hash(b"one") == expected(b"one")
        began = time.monotonic()
        assert client.hash(b"two") == expected(b"two")
    assert time.monotonic() - began >= 0.9  # waited for Retry-After: 1
    assert metric(node.url, "scrypt_helper_batch_size_count") == 2
    decisions = 'scrypt_helper_abuse_decisions_total{policy="block",rule="scrypt:ip:1/1s:block"}'
    assert metric(node.url, decisions) >= 1


async def test_503_is_retried_then_succeeds(nodes):
    node = nodes["overloaded"]
    inputs = [os.urandom(32) for _ in range(3)]
    async with AsyncClient(node.url, fallback=False, max_attempts=20) as client:
        outputs = await asyncio.gather(*(client.hash(data) for data in inputs))
    assert outputs == [expected(data, PICL_PARAMS) for data in inputs]
    assert metric(node.url, 'scrypt_helper_rejections_total{reason="queue_full"}') >= 1
    assert metric(node.url, "scrypt_helper_batch_size_count") == 3


# -- giving up on the helper -------------------------------------------------------------------------------


def test_unreachable_helper_falls_back_to_local_compute():
    data = os.urandom(32)
    with Client(nowhere(), params=SMALL) as client:
        assert client.hash(data) == expected(data)


async def test_async_unreachable_helper_falls_back_to_local_compute():
    data = os.urandom(32)
    async with AsyncClient(nowhere(), params=SMALL, max_attempts=2) as client:
        assert await client.hash(data) == expected(data)


def test_unreachable_helper_without_fallback_raises():
    with (
        Client(nowhere(), params=SMALL, fallback=False, max_attempts=3) as client,
        pytest.raises(HelperUnavailable, match=r"after 3 attempt\(s\); last: ConnectError"),
    ):
        client.hash(b"data")


def test_deadline_is_respected_against_a_helper_that_always_refuses(always_blocking):
    with Client(always_blocking.url, params=SMALL, deadline=1.5, max_attempts=100, fallback=False) as client:
        began = time.monotonic()
        with pytest.raises(HelperUnavailable, match="429"):
            client.hash(b"data")
        assert 0.9 <= time.monotonic() - began < 2.0


async def test_async_deadline_then_fallback(always_blocking):
    data = os.urandom(32)
    async with AsyncClient(always_blocking.url, params=SMALL, deadline=1.5, max_attempts=100) as client:
        began = time.monotonic()
        assert await client.hash(data) == expected(data)
        assert time.monotonic() - began < 2.0


def test_retry_after_beyond_the_deadline_gives_up_at_once(always_blocking):
    with Client(always_blocking.url, params=SMALL, deadline=0.5, fallback=False) as client:
        began = time.monotonic()
        with pytest.raises(HelperUnavailable, match="after 1 attempt"):
            client.hash(b"data")
        assert time.monotonic() - began < 0.3


# -- the commands ------------------------------------------------------------------------------------------


def test_client_command_prints_the_output(server):
    small = ["--salt", SMALL.salt.decode(), "-N", str(SMALL.n), "-r", "8", "-p", "1", "--buflen", "32"]
    done = scrypt_helper("client", "--url", server.url, *small, "00ff")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected(bytes.fromhex("00ff")).hex()


def test_client_command_reports_errors(server):
    refused = scrypt_helper("client", "--url", server.url, "-N", "2048", "00ff")
    assert refused.returncode == 1
    assert "helper answered 400 (errno 107): Invalid parameter in request body: N" in refused.stderr
    gone = scrypt_helper("client", "--url", nowhere(), "--deadline", "0.5", "00ff")
    assert gone.returncode == 1
    assert "scrypt helper unavailable" in gone.stderr
    assert not gone.stdout


def test_stretch_command_reads_the_password_from_stdin(server):
    done = scrypt_helper("stretch", "--email", EMAIL, "--url", server.url, stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == STRETCHED
