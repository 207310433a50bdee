"""Limits counted in this process's memory and shared through Redis once per interval.

A flood's requests each meet the ``request`` rules and the bans. Asking Redis for each one costs
a round trip the event loop wakes up for, several per request; here each process decides in its
own memory, as a node without Redis does, and a sync task trades what changed with Redis in one
script call every ``interval`` (the local-plus-global pattern):

- the hits each window took here since the last sync go up, and the hits every other process
  made within each of those windows come back (again at the sync after, for the hits the others
  sent meanwhile); a window then holds this process's own hits exactly and the others' as of the
  last sync that traded it;
- the bans and blocks this process set go up on a stream, and those set elsewhere come back.

A window's first hit here stays here until a second one comes (or the others are known to count
it too): a flood from fresh addresses, whose every window holds one hit, then costs Redis nothing.

Exactness. A process learns of the others' hits in a window once it has traded that window (from
its second hit there), at its next sync. Until then it judges on its own hits, so each of the
P x N processes of N nodes may admit a client up to the whole limit before it knows better: a
client can get at most (P x N - 1) x ``attempts`` beyond a rule's limit in one window, all of it
before the processes' syncs meet (one interval after each has seen it twice). Once a process
knows, it holds what it knows until the window ends or a sync says less. Redis keeps each
window's hits in tenths of it, so the others' hits are counted for up to a tenth of a window
longer than their own time (a client is refused a little early, never late). A ban or block set
by one process holds on the others from their next sync.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem
from redis.asyncio import Redis

from scrypt_helper.abuse.bounded_windows import BoundedMemoryStorage, BoundedMovingWindow

# Keys traded per script call: a backlog (after Redis was away) goes up over several syncs.
MAX_KEYS_PER_SYNC = 5000
# Markers kept on the stream for processes that start or come back later.
STREAM_LENGTH = 100_000
# Each window is kept in Redis in this many buckets.
BUCKETS = 10

# KEYS[1]: the marker stream; KEYS[2..]: one hash per window, a field per bucket and process.
# ARGV: this process's id, the last stream entry it read, the number of markers m, then m pairs
# (marker, seconds it holds), then a pair per window (hits here since the last sync, window seconds).
# Returns Redis's clock, the other processes' hits in each window, and the stream's new entries.
SYNC_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local me = ARGV[1]
local at = 4
for _ = 1, tonumber(ARGV[3]) do
  local until_ms = math.floor((now + tonumber(ARGV[at + 1])) * 1000)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4 + 2 * tonumber(ARGV[3])], '*',
             'm', ARGV[at], 'u', until_ms, 'p', me)
  at = at + 2
end
at = at + 1
local others = {}
for k = 2, #KEYS do
  local hits, window = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  at = at + 2
  local width = math.max(1, math.ceil(window / BUCKETS))
  local bucket = math.floor(now / width)
  if hits > 0 then
    redis.call('HINCRBY', KEYS[k], bucket .. ':' .. me, hits)
    redis.call('EXPIRE', KEYS[k], window + 2 * width)
  end
  local oldest = bucket - math.ceil(window / width)
  local count = 0
  local fields = redis.call('HGETALL', KEYS[k])
  for f = 1, #fields, 2 do
    local field = fields[f]
    local split = string.find(field, ':', 1, true)
    if tonumber(string.sub(field, 1, split - 1)) < oldest then
      redis.call('HDEL', KEYS[k], field)
    elseif string.sub(field, split + 1) ~= me then
      count = count + tonumber(fields[f + 1])
    end
  end
  others[#others + 1] = count
end
local news = redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', 1000)
return {tostring(now), others, news}
""".replace("BUCKETS", str(BUCKETS))


class SharedCounts:
    """This process's side of the shared limits: what goes up at the next sync, what came back."""

    def __init__(
        self, redis: Redis, local: BoundedMemoryStorage, *, prefix: str = "scrypt-helper", max_keys: int
    ) -> None:
        self.redis = redis
        self.local = local
        self.process = uuid.uuid4().hex[:16]
        self.max_keys = max_keys
        self._stream = f"{prefix}:markers"
        self._window_prefix = f"{prefix}:shared:"
        self._script = redis.register_script(SYNC_SCRIPT)
        self._last_entry = "0"
        self._syncing = asyncio.Lock()
        # Per window key: hits here since the last sync (0: judged, nothing taken) and its seconds.
        self._hits: collections.OrderedDict[str, list[int]] = collections.OrderedDict()
        # Windows whose one hit here is kept here, with their seconds and when that hit leaves them.
        self._firsts: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        self._markers: collections.OrderedDict[str, float] = collections.OrderedDict()
        # The windows the last sync traded: the next one asks for them again.
        self._traded: list[tuple[str, int]] = []
        # Per window key: the other processes' hits as of the last sync, and until when they count.
        self._others: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        local.on_new_marker = self.publish

    def others(self, key: str) -> int:
        """The other processes' hits in ``key``'s window, as of the last sync that traded it."""
        entry = self._others.get(key)
        if entry is None:
            return 0
        if entry[1] <= time.monotonic():
            del self._others[key]
            return 0
        return entry[0]

    def took(self, key: str, hits: int, window: int) -> None:
        """``hits`` taken here in ``key``'s window (0: a hit judged and refused): traded at the next
        sync, but for a window's first, kept here until a second comes."""
        entry = self._hits.get(key)
        if entry is not None:
            entry[0] += hits
            return
        first = self._firsts.pop(key, None)
        if first is None and hits == 1 and key not in self._others:
            _bounded(self._firsts, self.max_keys)
            self._firsts[key] = (window, time.monotonic() + window)
            return
        if first is not None and first[1] > time.monotonic():
            hits += 1
        _bounded(self._hits, self.max_keys)
        self._hits[key] = [hits, window]

    def publish(self, marker: str, seconds: float) -> None:
        """A ban or block set here, for the other processes at the next sync."""
        _bounded(self._markers, self.max_keys)
        self._markers[marker] = seconds

    @property
    def pending(self) -> int:
        """Window keys and markers waiting for the next sync."""
        return len(self._hits) + len(self._markers)

    async def sync(self) -> int:
        """Trade what changed with Redis in one script call; the number of keys traded. Raises
        what the Redis client raises, keeping what did not go up for the next try. One at a time."""
        async with self._syncing:
            return await self._sync()

    async def _sync(self) -> int:
        for key, window in self._traded:
            self.took(key, 0, window)
        self._traded = []
        markers = _take(self._markers, MAX_KEYS_PER_SYNC)
        windows = _take(self._hits, MAX_KEYS_PER_SYNC - len(markers))
        args: list[Any] = [self.process, self._last_entry, len(markers)]
        for marker, seconds in markers:
            args += [marker, seconds]
        args.append(STREAM_LENGTH)
        for _, (hits, window) in windows:
            args += [hits, window]
        keys = [self._stream, *(self._window_prefix + key for key, _ in windows)]
        try:
            clock, others, news = await self._script(keys=keys, args=args)
        except BaseException:
            self._give_back(markers, windows)
            raise
        now = time.monotonic()
        for (key, (hits, window)), count in zip(windows, others, strict=True):
            self._remember(key, int(count), now + window)
            if hits:
                self._traded.append((key, window))
        self._learn(float(clock), news)
        return len(markers) + len(windows)

    def _remember(self, key: str, count: int, until: float) -> None:
        if count:
            if key not in self._others:
                _bounded(self._others, self.max_keys)
            self._others[key] = (count, until)
            self._others.move_to_end(key)
        else:
            self._others.pop(key, None)

    def _learn(self, redis_now: float, entries: Sequence[Any]) -> None:
        """Hold the markers other processes put on the stream, for what is left of each."""
        for entry_id, fields in entries:
            self._last_entry = _text(entry_id)
            entry = dict(zip(map(_text, fields[::2]), map(_text, fields[1::2]), strict=True))
            if entry.get("p") != self.process:
                left = int(entry["u"]) / 1000 - redis_now
                if left > 0:
                    self.local.learn_marker(entry["m"], left)

    def _give_back(self, markers: list[tuple[str, float]], windows: list[tuple[str, list[int]]]) -> None:
        for marker, seconds in markers:
            self._markers.setdefault(marker, seconds)
        for key, (hits, window) in windows:
            self.took(key, hits, window)


class SharedMovingWindow(BoundedMovingWindow):
    """The moving window of the in-memory limits, counting the other processes' hits as well,
    and noting each judgement for the next sync."""

    def __init__(self, storage: BoundedMemoryStorage, counts: SharedCounts) -> None:
        super().__init__(storage)
        self.counts = counts

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = self.key_for(item, identifiers)
        window = item.get_expiry()
        taken = self.memory.acquire_now(key, item.amount, window, amount=cost, others=self.counts.others(key))
        self.counts.took(key, cost if taken else 0, window)
        return taken

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = self.key_for(item, identifiers)
        _, hits = await self.memory.get_moving_window(key, item.amount, item.get_expiry())
        return hits + self.counts.others(key) + cost <= item.amount


def _bounded(table: collections.OrderedDict[str, Any], size: int) -> None:
    """Make room for one more key, forgetting the oldest."""
    while len(table) >= size:
        table.popitem(last=False)


def _take(table: collections.OrderedDict[str, Any], count: int) -> list[tuple[str, Any]]:
    """Remove and return up to ``count`` of the oldest entries."""
    taken = []
    while table and len(taken) < count:
        taken.append(table.popitem(last=False))
    return taken


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
