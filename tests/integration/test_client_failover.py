"""The client with several base URLs (one per region) against real nodes and a real nginx whose nodes are
gone: failover on connection errors, time-outs and 5xx, the cool-down of a failed URL, the deadline and
Retry-After across URLs, the repeatable ``--url``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from harness.cluster import LocalNginx, find_nginx
from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper_client import AsyncClient, Client, HelperUnavailable
from tests.conftest import SMALL
from tests.integration.test_client import expected, metric, nowhere, scrypt_helper, small_node

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def live() -> Iterator[LocalServer]:
    with small_node() as node:
        yield node


@pytest.fixture(scope="module")
def hung() -> Iterator[LocalServer]:
    """A real node stopped with SIGSTOP: connections are accepted by the kernel, never answered."""
    node = small_node().start()
    node.signal(signal.SIGSTOP)
    try:
        yield node
    finally:
        node.signal(signal.SIGCONT)
        node.stop()


@pytest.fixture
def region_down() -> Iterator[LocalNginx]:
    """A region whose nodes are all gone: nginx from deploy/nginx answers its JSON 503, Retry-After: 1."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with LocalNginx([free_port()]) as nginx:
        yield nginx


def posts(nginx: LocalNginx, at_least: int = 0) -> list[int]:
    """The statuses nginx logged for POST /, in order, once ``at_least`` are logged (nginx logs a
    request after it answers it, so the last line may come a moment after the client has its answer)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in nginx.access_log().splitlines() if line.strip()]
        statuses = [line["status"] for line in lines if line["method"] == "POST"]
        if len(statuses) >= at_least or time.monotonic() > deadline:
            return statuses
        time.sleep(0.02)


def test_a_dead_url_fails_over_to_the_next_at_once_and_is_then_tried_last(live):
    dead = nowhere()
    data = os.urandom(32)
    with Client([dead, live.url], params=SMALL, fallback=False, max_attempts=2) as client:
        began = time.monotonic()
        assert client.hash(data) == expected(data)
        assert time.monotonic() - began < 0.5  # no backoff before a URL not tried yet
        assert client.health.is_down(dead)
        assert client.health.order() == [live.url, dead]
        # with one attempt left, a call that began with the dead URL could not succeed
        assert client.hash(b"second") == expected(b"second")


async def test_async_client_fails_over_from_a_dead_url(live):
    data = os.urandom(32)
    async with AsyncClient([nowhere(), live.url], params=SMALL, fallback=False, max_attempts=2) as client:
        assert await client.hash(data) == expected(data)


def test_a_503_moves_the_call_to_the_other_url_without_waiting_for_retry_after(region_down, live):
    data = os.urandom(32)
    with Client([region_down.url, live.url], params=SMALL, fallback=False) as client:
        began = time.monotonic()
        assert client.hash(data) == expected(data)
        assert time.monotonic() - began < 0.5  # Retry-After: 1 is the 503's URL's, not the other's
    assert posts(region_down, at_least=1) == [503]


def test_a_failed_url_is_tried_last_within_its_cool_down_then_first_again(region_down, live):
    with Client([region_down.url, live.url], params=SMALL, fallback=False, cooldown=1.0) as client:
        assert client.hash(b"one") == expected(b"one")
        assert posts(region_down, at_least=1) == [503]
        assert client.hash(b"two") == expected(b"two")
        assert posts(region_down) == [503]  # the live URL answered first
        time.sleep(1.1)
        assert client.health.order() == [region_down.url, live.url]
        assert client.hash(b"three") == expected(b"three")
        assert posts(region_down, at_least=2) == [503, 503]


def test_a_hung_url_times_out_and_fails_over(hung, live):
    data = os.urandom(32)
    with Client([hung.url, live.url], params=SMALL, read_timeout=0.5, fallback=False) as client:
        began = time.monotonic()
        assert client.hash(data) == expected(data)
        assert 0.4 < time.monotonic() - began < 1.5
        assert client.health.is_down(hung.url)


def test_the_deadline_bounds_the_whole_call_across_urls(hung, region_down):
    with Client(
        [hung.url, region_down.url],
        params=SMALL,
        read_timeout=10,
        deadline=1.5,
        max_attempts=100,
        fallback=False,
    ) as client:
        began = time.monotonic()
        with pytest.raises(HelperUnavailable):
            client.hash(b"data")
        # the hung URL's 10 s read time-out was cut to the 1.5 s left
        assert 1.4 <= time.monotonic() - began < 1.8


def test_retry_after_is_honoured_per_url(region_down):
    with Client(
        [region_down.url, nowhere()], params=SMALL, deadline=5, max_attempts=3, fallback=False
    ) as client:
        began = time.monotonic()
        with pytest.raises(HelperUnavailable, match=r"after 3 attempt\(s\); last: 503"):
            client.hash(b"data")
        assert time.monotonic() - began >= 1.0  # the third attempt waited out the 503's Retry-After: 1
    assert posts(region_down, at_least=2) == [503, 503]


def test_a_429_is_asked_again_of_the_same_url_not_of_another_region(live):
    with (
        small_node(rules="scrypt : ip : 1 : 1s : 1s : block") as limited,
        Client([limited.url, live.url], params=SMALL, fallback=False) as client,
    ):
        served_by_live = metric(live.url, "scrypt_helper_batch_size_count")
        assert client.hash(b"one") == expected(b"one")
        began = time.monotonic()
        assert client.hash(b"two") == expected(b"two")  # refused 429, Retry-After: 1
        assert time.monotonic() - began >= 0.9
        assert metric(limited.url, "scrypt_helper_batch_size_count") == 2
        assert metric(live.url, "scrypt_helper_batch_size_count") == served_by_live
        assert not client.health.is_down(limited.url)


def test_client_command_takes_one_url_per_region(live):
    small = ["--salt", SMALL.salt.decode(), "-N", str(SMALL.n), "-r", "8", "-p", "1", "--buflen", "32"]
    done = scrypt_helper("client", "--url", nowhere(), "--url", live.url, *small, "00ff")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected(bytes.fromhex("00ff")).hex()
