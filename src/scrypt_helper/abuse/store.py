"""Where limit counters live: in memory, or in Redis shared by every node, failing over to memory.

With Redis configured, every operation goes to Redis while it answers. The first failure
switches the node to its local counters (fail-open) or to refusing requests (fail-closed),
logs it (once per ``log_interval``) and starts probing Redis every ``probe_interval``;
the first successful probe switches back. Local counters, whether they are the node's only
ones or its fall-back, hold at most ``max_keys`` windows and ``max_keys`` markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter

from scrypt_helper.abuse.bounded_windows import BoundedMemoryStorage, BoundedMovingWindow

logger = logging.getLogger("scrypt_helper.abuse")
T = TypeVar("T")
Operation = Callable[[Storage, RateLimiter], Awaitable[T]]


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
    ) -> None:
        self.local = BoundedMemoryStorage(max_keys)
        self._local_limiter = BoundedMovingWindow(self.local)
        self.redis: RedisStorage | None = None
        self._redis_limiter: RateLimiter | None = None
        if redis_url:
            self.redis = RedisStorage(
                redis_url if redis_url.startswith("async+") else f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                key_prefix="scrypt-helper",
            )
            self._redis_limiter = MovingWindowRateLimiter(self.redis)
        self.fail_closed = fail_closed
        self.probe_interval = probe_interval
        self.log_interval = log_interval
        self.redis_up = self.redis is not None
        self.failures = 0
        self.on_change: Callable[[bool], None] | None = None
        self._last_log = float("-inf")
        self._probe: asyncio.Task[None] | None = None

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` on Redis while it is up, else on local memory (or refuse)."""
        if self.redis is not None and self._redis_limiter is not None and self.redis_up:
            try:
                return await operation(self.redis, self._redis_limiter)
            except Exception as exc:
                self._went_down(exc)
        if self.redis is not None and self.fail_closed:
            raise StoreUnavailable("rate-limit storage unavailable")
        return await operation(self.local, self._local_limiter)

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
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        assert self.redis is not None
        while not self.redis_up:
            await asyncio.sleep(self.probe_interval)
            with contextlib.suppress(Exception):
                if await self.redis.check():
                    self.redis_up = True
                    logger.warning("redis is back; limits are shared again")
                    if self.on_change:
                        self.on_change(True)

    async def check(self) -> bool:
        """Whether Redis answers now (True when no Redis is configured)."""
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.check())
        except Exception:
            return False

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
