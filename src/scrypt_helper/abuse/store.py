"""Where limit counters live: in memory, or shared by every node through Redis, failing over to memory.

Without Redis, everything is counted in this process's memory. With Redis there are two ways:

- ``run_shared`` (every request: the ``request`` and ``bad_key`` rules, bans): counted in memory
  and traded with Redis every ``sync_interval`` by a sync task (``abuse.shared_counts``), so that a
  flood costs no round trip per request;
- ``run`` (hashes: the ``scrypt`` rules' windows): in Redis while it answers, exact across nodes;
  a hash costs far more than the round trip.

Bans and blocks are held in memory either way, and traded at each sync. The first failure of
Redis switches the node to its local counters (fail-open) or to refusing requests (fail-closed)
and logs it (once per ``log_interval``); the sync task then tries Redis every ``probe_interval``,
and the first sync that succeeds switches back. Local counters hold at most ``max_keys`` windows
and ``max_keys`` markers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter

from scrypt_helper.abuse.bounded_windows import BoundedMemoryStorage, BoundedMovingWindow

if TYPE_CHECKING:
    from scrypt_helper.abuse.shared_counts import SharedCounts

logger = logging.getLogger("scrypt_helper.abuse")
T = TypeVar("T")
# Run with the store of bans and blocks (always this process's memory) and the windows' limiter.
Operation = Callable[[Storage, RateLimiter], Awaitable[T]]
# Called with the seconds each successful sync took.
SyncObserver = Callable[[float], None]


class StoreUnavailable(Exception):
    """Redis is down and the node is configured to fail closed."""


class LimitStore:
    """Counters and markers for the abuse rules, with Redis fail-over."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        fail_closed: bool = False,
        timeout: float = 0.25,
        probe_interval: float = 1.0,
        log_interval: float = 60.0,
        max_keys: int = 100_000,
        sync_interval: float = 0.1,
    ) -> None:
        self.local = BoundedMemoryStorage(max_keys)
        self._local_limiter = BoundedMovingWindow(self.local)
        self.redis: RedisStorage | None = None
        self._redis_limiter: RateLimiter | None = None
        self.shared: SharedCounts | None = None
        self._shared_limiter: RateLimiter = self._local_limiter
        if redis_url:
            # redis-py only where Redis is configured: a tenth of a node's start-up imports.
            from redis.asyncio import Redis

            from scrypt_helper.abuse.shared_counts import SharedCounts, SharedMovingWindow

            self.redis = RedisStorage(
                redis_url if redis_url.startswith("async+") else f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                key_prefix="scrypt-helper",
            )
            self._redis_limiter = MovingWindowRateLimiter(self.redis)
            client = Redis.from_url(
                redis_url.removeprefix("async+"), socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self.shared = SharedCounts(client, self.local, max_keys=max_keys)
            self._shared_limiter = SharedMovingWindow(self.local, self.shared)
        self.fail_closed = fail_closed
        self.sync_interval = sync_interval
        self.probe_interval = probe_interval
        self.log_interval = log_interval
        self.redis_up = self.redis is not None
        self.failures = 0
        self.syncs = 0  # trades with Redis that succeeded
        self.on_change: Callable[[bool], None] | None = None
        self.on_sync: SyncObserver | None = None
        self._last_log = float("-inf")
        self._syncing: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start trading with Redis now (in a running event loop), not at the first judgement: a
        node that fails closed serves once the first sync has reached Redis."""
        if self.shared is not None:
            self._start_syncing()

    async def run_shared(self, operation: Operation[T]) -> T:
        """Run ``operation`` on this process's memory, sharing its hits and markers at the next sync;
        failing closed, refuse until a sync has reached Redis and while Redis is down. Nothing in it
        waits."""
        if self.shared is not None:
            self._start_syncing()
            if self.fail_closed and not (self.redis_up and self.syncs):
                raise StoreUnavailable("rate-limit storage unavailable")
        return await operation(self.local, self._shared_limiter)

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` with its windows in Redis while it is up, else in local memory (or refuse)."""
        if self.redis is not None and self._redis_limiter is not None:
            self._start_syncing()
            if self.redis_up:
                try:
                    if asyncio.current_task() is None:  # judged eagerly: the Redis client needs a task
                        return await asyncio.ensure_future(operation(self.local, self._redis_limiter))
                    return await operation(self.local, self._redis_limiter)
                except Exception as exc:
                    self._went_down(exc)
            if self.fail_closed:
                raise StoreUnavailable("rate-limit storage unavailable")
        return await operation(self.local, self._local_limiter)

    def _start_syncing(self) -> None:
        """Start the sync task, once, on the first judgement made in an event loop."""
        if self._syncing is None and not self._closing:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # judged with no loop at all (eagerly, in a test): nothing to share yet
                return
            self._syncing = loop.create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        """Trade with Redis at once, then every ``sync_interval`` while it answers and every
        ``probe_interval`` while it does not."""
        assert self.shared is not None
        while not self._closing:
            started = time.perf_counter()
            try:
                while await self.shared.sync() and self.shared.pending:
                    pass  # a backlog: keep going until it is up
            except Exception as exc:
                self._went_down(exc)
                await asyncio.sleep(self.probe_interval)
                continue
            self.syncs += 1
            if self.on_sync is not None:
                self.on_sync(time.perf_counter() - started)
            if not self.redis_up:
                self.redis_up = True
                logger.warning("redis is back; limits are shared again")
                if self.on_change:
                    self.on_change(True)
            await asyncio.sleep(self.sync_interval)

    def _went_down(self, exc: Exception) -> None:
        self.failures += 1
        if self.redis_up:
            self.redis_up = False
            if self.on_change:
                self.on_change(False)
        now = time.monotonic()
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            mode = "refusing requests" if self.fail_closed else "using local limits"
            logger.error("redis unreachable (%s); %s until it is back", type(exc).__name__, mode)

    async def check(self) -> bool:
        """Whether Redis answers now (True when no Redis is configured)."""
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.check())
        except Exception:
            return False

    async def close(self) -> None:
        """Stop the sync task and close the Redis clients. A cancellation that reaches the task inside
        the Redis client can be swallowed there, so the task is cancelled until it has ended."""
        self._closing = True
        while self._syncing is not None and not self._syncing.done():
            self._syncing.cancel()
            await asyncio.wait({self._syncing}, timeout=0.1)
        if self.shared is not None:
            await self.shared.redis.aclose()
