"""The load generator against a real node: it stops where asked, counts every reply, survives refusals."""

from __future__ import annotations

import pytest

from scrypt_helper.bench.load import ClosedLoop, closed_loop, connect, get, hash_requests
from scrypt_helper.bench.local_servers import free_port
from tests.conftest import SMALL


async def test_a_closed_loop_sends_exactly_its_total_and_counts_each_reply(server):
    run = await closed_loop(get(server.host, server.port, "/__lbheartbeat__"), connections=4, total=50)
    assert run.sent == 50
    assert run.statuses == {200: 50}


async def test_each_client_pauses_as_told_between_its_requests(server):
    run = await closed_loop(
        get(server.host, server.port, "/__lbheartbeat__"), connections=1, seconds=0.5, pause=lambda r: 0.1
    )
    assert 3 <= run.sent <= 6


async def test_a_refused_connection_counts_as_a_failure_and_the_loop_goes_on():
    run = await closed_loop(get("127.0.0.1", free_port(), "/"), connections=2, seconds=0.3)
    assert run.sent > 2
    assert run.statuses == {0: run.sent}


async def test_a_pool_of_connections_is_used_and_left_open(server):
    pool = [await connect(server.host, server.port) for _ in range(2)]
    first = list(pool)
    run = await closed_loop(get(server.host, server.port, "/"), connections=2, total=10, pool=pool)
    assert run.statuses == {200: 10}
    assert pool == first
    assert not any(writer.is_closing() for _, writer in pool)
    for _, writer in pool:
        writer.close()


def test_hashes_from_a_child_process_are_each_answered(server):
    requests = hash_requests(server.host, server.port, SMALL, clients="users")
    run = ClosedLoop(requests, connections=2, total=6).start().result()
    assert run.statuses == {200: 6}


async def test_a_closed_loop_needs_a_way_to_stop():
    with pytest.raises(ValueError, match="seconds, total or until"):
        await closed_loop(get("127.0.0.1", 1, "/"), connections=1)
