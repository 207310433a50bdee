"""The bounded in-memory limit store: the cap, its eviction order, bans kept apart from windows,
and moving windows that count exactly as limits' own MemoryStorage does."""

from __future__ import annotations

import random

import pytest
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from scrypt_helper.abuse.bounded_windows import BoundedMemoryStorage, BoundedMovingWindow
from scrypt_helper.abuse.store import LimitStore
from tests.clock import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """time.time() for both stores, moved by the test."""
    clock = Clock()
    monkeypatch.setattr("time.time", clock)
    return clock


def evictions(store: BoundedMemoryStorage) -> list[str]:
    seen: list[str] = []
    store.on_evict = seen.append
    return seen


async def test_the_cap_holds_for_many_distinct_keys(clock):
    store = BoundedMemoryStorage(100)
    seen = evictions(store)
    for n in range(10_000):
        assert await store.acquire_entry(f"window:{n}", 5, 60)
        await store.incr(f"ban:ip:{n}", 60)
        await store.incr(f"report:{n}", 60)
    assert store.sizes() == {"window": 100, "marker": 100, "counter": 100}
    assert seen.count("window") == seen.count("marker") == seen.count("counter") == 9_900
    assert list(store.windows)[-1] == "window:9999"  # the newest kept, the oldest forgotten
    assert "window:0" not in store.windows


async def test_the_least_recently_used_key_goes_first(clock):
    store = BoundedMemoryStorage(3)
    for key in ("a", "b", "c"):
        await store.acquire_entry(key, 5, 60)
    await store.acquire_entry("a", 5, 60)  # a is now the most recently used
    await store.acquire_entry("d", 5, 60)
    assert list(store.windows) == ["c", "a", "d"]
    for key in ("ban:x", "ban:y", "ban:z"):
        await store.incr(key, 60)
    assert await store.get("ban:x") == 1  # reading a marker keeps it too
    await store.incr("ban:w", 60)
    assert list(store.markers) == ["ban:z", "ban:x", "ban:w"]


async def test_expired_keys_are_dropped_before_a_live_one_is_evicted(clock):
    store = BoundedMemoryStorage(3)
    seen = evictions(store)
    await store.acquire_entry("old", 5, 10)
    clock.now += 5
    await store.acquire_entry("live-1", 5, 60)
    await store.acquire_entry("live-2", 5, 60)
    clock.now += 6  # "old" has expired; the others have not
    await store.acquire_entry("new", 5, 60)
    assert list(store.windows) == ["live-1", "live-2", "new"]
    assert seen == []


async def test_a_ban_survives_a_flood_of_fresh_addresses(clock):
    """A flood creates windows only; the ban marker lives in its own table and stays."""
    store = LimitStore(max_keys=1000)
    limiter = MovingWindowRateLimiter(store.local)
    rule = RateLimitItemPerSecond(600, 60)
    await store.local.incr("ban:ip:203.0.113.7", 600)
    for _ in range(20_000):
        address = f"2001:db8:{random.getrandbits(16):x}::{random.getrandbits(32):x}"
        assert await limiter.hit(rule, "request:ip:600/60s:ban", address)
        assert await store.local.get(f"ban:ip:{address}") == 0
    assert len(store.local.windows) == 1000
    assert await store.local.get("ban:ip:203.0.113.7") == 1
    assert await store.local.get_expiry("ban:ip:203.0.113.7") == clock.now + 600


async def test_bans_and_blocks_survive_a_flood_that_trips_a_report_rule(clock):
    """Report counters fill a table of their own, never the markers'."""
    store = BoundedMemoryStorage(100)
    await store.incr("ban:ip:203.0.113.7", 600)
    await store.incr("block:scrypt:ip:30/60s:block:203.0.113.8", 300)
    for n in range(5_000):
        await store.incr(f"report:request:ip:1/60s:report:10.0.{n >> 8}.{n & 255}", 60)
    assert store.sizes() == {"window": 0, "marker": 2, "counter": 100}
    assert await store.get("ban:ip:203.0.113.7") == 1
    assert await store.get("block:scrypt:ip:30/60s:block:203.0.113.8") == 1


async def test_markers_count_and_expire_like_limits_memory_storage(clock):
    store = BoundedMemoryStorage(10)
    assert await store.get("block:k") == 0
    assert await store.incr("block:k", 30) == 1
    clock.now += 10
    assert await store.incr("block:k", 30) == 2  # a later hit keeps the first expiry
    assert await store.get_expiry("block:k") == clock.now + 20
    clock.now += 20
    assert await store.get("block:k") == 0
    assert await store.get_expiry("block:k") == clock.now
    assert "block:k" not in store.markers


@pytest.mark.parametrize("limiter", [MovingWindowRateLimiter, BoundedMovingWindow])
async def test_moving_windows_match_limits_memory_storage(clock, limiter):
    """The same random hits, costs and clock steps give the same answers and window stats, through
    limits' moving-window strategy and through the one that calls the bounded storage directly."""
    ours = limiter(BoundedMemoryStorage(1000))
    theirs = MovingWindowRateLimiter(MemoryStorage())
    items = [RateLimitItemPerSecond(1, 2), RateLimitItemPerSecond(3, 5), RateLimitItemPerSecond(7, 10)]
    rng = random.Random(7)
    refused = 0
    for _ in range(3000):
        clock.now += rng.choice((0.0, 0.1, 0.5, 1.0, 2.5))
        item = rng.choice(items)
        key = rng.choice(("a", "b", "c"))
        cost = rng.choice((1, 1, 1, 2, 3))
        answer = await ours.hit(item, key, cost=cost)
        assert answer == await theirs.hit(item, key, cost=cost)
        refused += not answer
        assert await ours.test(item, key) == await theirs.test(item, key)
        assert (await ours.get_window_stats(item, key)).remaining == (
            await theirs.get_window_stats(item, key)
        ).remaining
    assert 300 < refused < 2700  # both answers were exercised


async def test_a_window_keeps_only_its_limit_of_hits(clock):
    store = BoundedMemoryStorage(10)
    for _ in range(1000):
        await store.acquire_entry("k", 30, 60)
        clock.now += 0.01
        if not await store.acquire_entry("k", 30, 60):
            clock.now += 60
    window = store.windows["k"]
    assert not isinstance(window, float)
    assert len(window.stamps) == 30


async def test_clear_and_reset(clock):
    store = BoundedMemoryStorage(10)
    await store.acquire_entry("k", 1, 60)
    await store.incr("k", 60)
    await store.incr("ban:k", 60)
    await store.clear("k")
    assert await store.acquire_entry("k", 1, 60)
    assert await store.get("k") == 0
    assert await store.get("ban:k") == 1
    assert await store.reset() == 2
    assert store.sizes() == {"window": 0, "marker": 0, "counter": 0}
    assert await store.check()


def test_the_cap_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        BoundedMemoryStorage(0)


async def test_the_direct_strategy_keeps_its_windows_under_limits_own_keys():
    storage = BoundedMemoryStorage(10)
    item = RateLimitItemPerSecond(3, 60)
    assert BoundedMovingWindow(storage).key_for(
        item, ("request:ip:3/60s:ban", "2001:db8::1")
    ) == item.key_for("request:ip:3/60s:ban", "2001:db8::1")
    await BoundedMovingWindow(storage).hit(item, "rule", "client")
    assert await MovingWindowRateLimiter(storage).test(item, "rule", "client", cost=2)
    assert not await MovingWindowRateLimiter(storage).test(item, "rule", "client", cost=3)
