"""Judging a request at once, with no event loop: its limits live in this process's memory, with or
without Redis; only a hash's limits in Redis wait."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.abuse.guard import Guard
from scrypt_helper.abuse.rules import parse_rules
from scrypt_helper.abuse.store import LimitStore
from scrypt_helper.core.errors import ApiError
from scrypt_helper.http.eager import Done, run_eagerly

CLIENT = ClientIdentity(ipaddress.ip_address("2001:db8::1"))
NEIGHBOUR = ClientIdentity(ipaddress.ip_address("2001:db8::2"))


def admit_at_once(guard: Guard, client: ClientIdentity) -> ApiError | None:
    """``admit_request`` run to its end on this stack; the refusal it gives, if any."""

    async def admitted() -> ApiError | None:
        try:
            await guard.admit_request(client)
        except ApiError as error:
            return error
        return None

    verdict = run_eagerly(admitted())
    assert isinstance(verdict, Done), "judging in memory waited for something"
    return verdict.value


def test_requests_judged_at_once_trip_a_ban_and_name_its_rule():
    guard = Guard(parse_rules("request : ip : 3 : 60s : 60s : ban"), LimitStore())
    for _ in range(3):
        assert admit_at_once(guard, CLIENT) is None  # no event loop, nothing awaited
    refused = admit_at_once(guard, CLIENT)  # the fourth in the window: banned from now on
    assert refused is not None
    assert (refused.status, refused.reason) == (429, "request:ip:3/60s:ban")
    penalty = guard.penalty(CLIENT)
    assert penalty is not None
    assert penalty.retry_after == pytest.approx(60, abs=1)
    assert guard.penalty(NEIGHBOUR) is None  # another address has its own window


async def test_judged_at_once_or_awaited_the_windows_are_the_same():
    guard = Guard(parse_rules("request : ip : 2 : 60s : 60s : block"), LimitStore())
    assert admit_at_once(guard, CLIENT) is None
    await guard.admit_request(CLIENT)
    assert admit_at_once(guard, CLIENT) is not None  # the third: the block is recorded
    assert guard.penalty(CLIENT) is not None


async def test_with_redis_requests_are_judged_at_once_and_a_hash_waits_as_a_task():
    rules = "request : ip : 1 : 60s : 60s : ban; scrypt : ip : 5 : 60s : 60s : block"
    store = LimitStore("redis://127.0.0.1:1/0", timeout=0.05)  # nothing listens there
    guard = Guard(parse_rules(rules), store)
    try:
        assert admit_at_once(guard, CLIENT) is None  # the request rules: in memory, nothing awaited
        verdict = run_eagerly(guard.admit_scrypt(CLIENT))
        assert isinstance(verdict, asyncio.Task)  # the hash's window is asked of Redis, in a task
        attempt = await verdict  # Redis unreachable: counted locally instead, and admitted
        attempt.forget()
        assert not store.redis_up
        refused = admit_at_once(guard, CLIENT)
        assert refused is not None
        assert refused.reason == "request:ip:1/60s:ban"
    finally:
        await store.close()


async def test_what_waits_goes_on_as_a_task_from_where_it_stopped():
    async def waits() -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        return 7

    task = run_eagerly(waits())
    assert isinstance(task, asyncio.Task)
    assert await task == 7
