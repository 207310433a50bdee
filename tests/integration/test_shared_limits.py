"""Request limits counted in each process's memory and traded through a real Redis: what one
process counted reaches the others at their next sync (a window's first hit only once a second
comes), and no client gets more beyond a limit than the stated bound, (processes - 1) x attempts
within one interval."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.abuse.guard import Guard
from scrypt_helper.abuse.rules import parse_rules
from scrypt_helper.abuse.store import LimitStore
from scrypt_helper.core.errors import ApiError

CLIENT = ClientIdentity(ipaddress.ip_address("2001:db8::1"))
ATTEMPTS = 4
RULES = f"request : ip : {ATTEMPTS} : 60s : 60s : ban"


INTERVAL = 0.05


def processes(url: str, count: int) -> list[Guard]:
    """``count`` processes' guards on one Redis, each trading every INTERVAL from now on."""
    guards = []
    for _ in range(count):
        store = LimitStore(url, sync_interval=INTERVAL, probe_interval=INTERVAL)
        store.start()
        guards.append(Guard(parse_rules(RULES), store))
    return guards


async def admitted(guard: Guard, tries: int, client: ClientIdentity = CLIENT) -> int:
    """How many of ``tries`` requests ``guard`` lets through."""
    statuses = []
    for _ in range(tries):
        try:
            await guard.admit_request(client)
        except ApiError as refused:
            statuses.append(refused.status)
        else:
            statuses.append(200)
    assert set(statuses) <= {200, 429}
    return statuses.count(200)


async def syncs(guards: list[Guard], count: int = 3) -> None:
    """Wait until each process has traded with Redis ``count`` more times (nothing above yields
    until here, so no trade comes between judgements a test makes in a row)."""
    start = [guard.store.syncs for guard in guards]
    for _ in range(400):
        if all(guard.store.syncs >= first + count for guard, first in zip(guards, start, strict=True)):
            return
        await asyncio.sleep(INTERVAL / 2)
    raise AssertionError("the processes stopped trading with Redis")


async def until_redis_is(up: bool, guards: list[Guard]) -> None:
    """Wait until every process has found Redis up, or down."""
    for _ in range(400):
        if all(guard.store.redis_up is up for guard in guards):
            return
        await asyncio.sleep(INTERVAL / 2)
    raise AssertionError(f"the processes never found Redis {'up' if up else 'down'}")


async def close(guards: list[Guard]) -> None:
    for guard in guards:
        await guard.store.close()


async def test_hits_counted_in_one_process_count_in_the_others_after_a_sync(redis_server):
    guards = processes(redis_server.url, 3)
    try:
        assert [await admitted(guard, 2) for guard in guards[:2]] == [2, 2]
        await syncs(guards)  # each process's hits go up, and the others' come back
        assert await admitted(guards[0], 1) == 0  # its own two and the two it learned of: the limit
        await syncs(guards)  # the ban that refusal tripped reaches the others
        assert [await admitted(guard, 1) for guard in guards[1:]] == [0, 0]
    finally:
        await close(guards)


async def test_a_first_hit_stays_in_its_process_and_a_second_shares_both(redis_server):
    a, b = guards = processes(redis_server.url, 2)
    try:
        assert await admitted(a, 1) == 1
        await syncs(guards)
        assert await admitted(b, ATTEMPTS) == ATTEMPTS  # a kept its one hit: b never heard of it
        await syncs(guards)
        # a's second hit is judged before a has heard of b's four (within the bound); it takes
        # both of a's hits up, and brings b's four down.
        assert await admitted(a, 1) == 1
        await syncs(guards)
        assert await admitted(a, 1) == 0
    finally:
        await close(guards)


@pytest.mark.parametrize("count", [2, 3])
async def test_within_one_interval_a_client_gets_at_most_the_stated_bound_beyond_a_limit(redis_server, count):
    guards = processes(redis_server.url, count)
    try:
        # The worst case: the client reaches every process before any of them syncs.
        first = [await admitted(guard, 2 * ATTEMPTS) for guard in guards]
        assert sum(first) - ATTEMPTS == (count - 1) * ATTEMPTS  # the bound, and no more
        await syncs(guards)
        assert [await admitted(guard, ATTEMPTS) for guard in guards] == [0] * count
    finally:
        await close(guards)


async def test_a_ban_set_in_one_process_holds_in_the_others_from_their_next_sync(redis_server):
    a, b = guards = processes(redis_server.url, 2)
    try:
        assert await admitted(a, ATTEMPTS + 1) == ATTEMPTS  # the one beyond it bans the client
        assert await admitted(b, 1) == 1  # b has not heard yet
        await syncs(guards)
        with pytest.raises(ApiError) as refused:
            await b.admit_request(CLIENT)
        assert refused.value.reason == "ban:ip"
        penalty = b.penalty(CLIENT)
        assert penalty is not None
        assert 55 < penalty.retry_after <= 60
        # A process that starts later learns the bans still in force from the stream.
        (late,) = processes(redis_server.url, 1)
        await syncs([late])
        with pytest.raises(ApiError):
            await late.admit_request(CLIENT)
        await late.store.close()
    finally:
        await close(guards)


async def test_without_redis_a_process_counts_alone_and_trades_again_once_it_is_back(redis_server):
    a, b = guards = processes(redis_server.url, 2)
    try:
        redis_server.stop()
        assert await admitted(a, 3) == 3  # counted locally meanwhile
        assert await admitted(b, 2) == 2
        await until_redis_is(False, guards)
        assert a.store.shared is not None
        assert a.store.shared.pending  # what did not go up waits for the next sync
        redis_server.start()
        await until_redis_is(True, guards)
        await syncs(guards)
        # Each one's hits reached the other once Redis was back: 3 + 2, over the limit.
        assert [await admitted(a, 1), await admitted(b, 1)] == [0, 0]
    finally:
        await close(guards)


async def test_a_store_closes_at_once_even_in_the_middle_of_a_sync(redis_server):
    """The Redis client can swallow a cancellation that lands inside it: a node whose shutdown
    waited on that sync task stood until it was killed."""
    for attempt in range(50):
        store = LimitStore(redis_server.url)
        store.start()
        await asyncio.sleep(attempt % 10 / 1000)  # within the first sync, or just after it
        closing = asyncio.ensure_future(store.close())
        done, _ = await asyncio.wait({closing}, timeout=2)
        assert done, f"close was still waiting on the sync task after 2 s (attempt {attempt})"
