"""Counting a refused request at once, where the limits live in this process's memory."""

from __future__ import annotations

import ipaddress

import pytest

from scrypt_helper.abuse import ClientIdentity
from scrypt_helper.abuse.guard import Guard
from scrypt_helper.abuse.rules import parse_rules
from scrypt_helper.abuse.store import LimitStore

CLIENT = ClientIdentity(ipaddress.ip_address("2001:db8::1"))
NEIGHBOUR = ClientIdentity(ipaddress.ip_address("2001:db8::2"))


def test_requests_counted_at_once_trip_a_ban_as_admit_request_would():
    guard = Guard(parse_rules("request : ip : 3 : 60s : 60s : ban"), LimitStore())
    assert guard.counts_at_once
    for _ in range(3):
        guard.count_request_now(CLIENT)  # no event loop, nothing awaited
        assert guard.penalty(CLIENT) is None
    guard.count_request_now(CLIENT)  # the fourth in the window: banned from now on
    assert guard.penalty(CLIENT).retry_after == pytest.approx(60, abs=1)  # type: ignore[union-attr]
    assert guard.penalty(NEIGHBOUR) is None  # another address has its own window


async def test_counted_at_once_or_awaited_the_windows_are_the_same():
    guard = Guard(parse_rules("request : ip : 2 : 60s : 60s : block"), LimitStore())
    guard.count_request_now(CLIENT)
    await guard.admit_request(CLIENT)
    guard.count_request_now(CLIENT)  # the third: the block is recorded
    assert guard.penalty(CLIENT) is not None


def test_a_redis_store_is_never_counted_at_once():
    guard = Guard(parse_rules("request : ip : 3 : 60s : 60s : ban"), LimitStore("redis://127.0.0.1:1/0"))
    assert not guard.counts_at_once
