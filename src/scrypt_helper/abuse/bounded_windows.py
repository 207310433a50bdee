"""Rate-limit state in process memory, for a bounded number of keys at a constant cost per request.

limits' own ``MemoryStorage`` keeps every key it has seen until a background pass, which walks
every key, finds it expired: a flood from fresh addresses grows it without bound and makes
each pass, and so each request, slower. ``BoundedMemoryStorage`` keeps three tables, each
holding at most ``max_keys`` keys in least-recently-used order:

- ``window``: moving windows (``acquire_entry``), the last ``limit`` hit times of a rule's key;
- ``marker``: counters (``incr``) under a marker prefix, the bans and blocks the guard writes;
- ``counter``: every other counter (the guard's report counters).

A full table forgets its least recently used key to make room. Markers live apart so that
a flood, of fresh addresses (windows) or of clients tripping a report rule (counters), never
pushes a ban or block out; to evict a marker a client must trip a block or ban rule from as
many keys as the cap. Every operation is a few dictionary operations plus a look at the two
oldest keys of a table, dropped if they have expired: no operation walks a table.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Callable

from limits import RateLimitItem
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter

# Called with the table's name each time a live key is forgotten to make room.
EvictionObserver = Callable[[str], None]
# Called with a marker's key and its seconds to live when this process sets it (not when it learns it).
MarkerObserver = Callable[[str, float], None]
TABLES = ("window", "marker", "counter")
# The guard's ban and block markers (``ban:ip:...``, ``block:RULE:...``).
MARKER_PREFIXES = ("ban:", "block:")
# Expired keys dropped from the old end of a table per insert: more than one, so that a table
# sheds dead keys faster than new ones arrive.
_SWEEP = 2


class _Window:
    """The newest ``limit`` hit times of one key, in a ring; ``expires`` is when all are stale."""

    __slots__ = ("expires", "head", "stamps")

    def __init__(self, expires: float) -> None:
        self.stamps = array("d")
        self.head = 0  # where the next hit goes once the ring is full
        self.expires = expires

    def nth_newest(self, n: int) -> float | None:
        """The time of the n-th newest hit (1: the newest), None if there are fewer than n."""
        size = len(self.stamps)
        if n > size:
            return None
        return self.stamps[(self.head - n) % size]

    def add(self, stamp: float, limit: int) -> None:
        if len(self.stamps) < limit:
            self.stamps.append(stamp)
            self.head = len(self.stamps) % limit
        else:
            self.stamps[self.head] = stamp
            self.head = (self.head + 1) % limit


class _Counter:
    __slots__ = ("expires", "value")

    def __init__(self, value: int, expires: float) -> None:
        self.value = value
        self.expires = expires


# A window of a single hit, the only kind a flood of fresh addresses creates, is stored as the
# float time it expires (hit time + expiry): 24 bytes instead of about 200 for a _Window.
WindowValue = _Window | float


def _expires(value: WindowValue | _Counter) -> float:
    return value if isinstance(value, float) else value.expires


class BoundedMemoryStorage(Storage, MovingWindowSupport):
    """limits' storage interface for counters and moving windows, at most ``max_keys`` of each."""

    STORAGE_SCHEME = None  # built directly by LimitStore, never from a storage URI

    def __init__(self, max_keys: int, *, marker_prefixes: tuple[str, ...] = MARKER_PREFIXES) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        super().__init__()
        self.max_keys = max_keys
        self.marker_prefixes = marker_prefixes
        self.windows: OrderedDict[str, WindowValue] = OrderedDict()
        self.markers: OrderedDict[str, _Counter] = OrderedDict()
        self.counters: OrderedDict[str, _Counter] = OrderedDict()
        self.on_evict: EvictionObserver | None = None
        self.on_new_marker: MarkerObserver | None = None

    def sizes(self) -> dict[str, int]:
        """Keys held, by table."""
        return {"window": len(self.windows), "marker": len(self.markers), "counter": len(self.counters)}

    @property
    def base_exceptions(self) -> type[Exception]:  # pragma: no cover - nothing here raises
        return ValueError

    def _make_room(
        self, table: OrderedDict[str, WindowValue] | OrderedDict[str, _Counter], kind: str, now: float
    ) -> None:
        """Drop expired keys at the old end, then the least recently used key if still full."""
        for _ in range(_SWEEP):
            if not table:
                return
            oldest = next(iter(table))
            if _expires(table[oldest]) > now:
                break
            del table[oldest]
        if len(table) >= self.max_keys:
            table.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(kind)

    # Counters: bans and blocks (markers), reports.

    def _counter_table(self, key: str) -> tuple[OrderedDict[str, _Counter], str]:
        if key.startswith(self.marker_prefixes):
            return self.markers, "marker"
        return self.counters, "counter"

    @staticmethod
    def _live_counter(table: OrderedDict[str, _Counter], key: str, now: float) -> _Counter | None:
        counter = table.get(key)
        if counter is None:
            return None
        if counter.expires <= now:
            del table[key]
            return None
        table.move_to_end(key)
        return counter

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount``; a new counter expires ``expiry`` seconds from now (later hits keep that)."""
        now = time.time()
        table, name = self._counter_table(key)
        counter = self._live_counter(table, key, now)
        if counter is None:
            self._make_room(table, name, now)
            counter = table[key] = _Counter(0, now + expiry)
            if table is self.markers and self.on_new_marker is not None:
                self.on_new_marker(key, expiry)
        counter.value += amount
        return counter.value

    def learn_marker(self, key: str, seconds: float) -> None:
        """Hold a marker another process set, for ``seconds`` from now (or longer, if already held)."""
        now = time.time()
        counter = self._live_counter(self.markers, key, now)
        if counter is None:
            self._make_room(self.markers, "marker", now)
            self.markers[key] = _Counter(1, now + seconds)
        else:
            counter.expires = max(counter.expires, now + seconds)

    async def get(self, key: str) -> int:
        counter = self._live_counter(self._counter_table(key)[0], key, time.time())
        return 0 if counter is None else counter.value

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        counter = self._live_counter(self._counter_table(key)[0], key, now)
        return now if counter is None else counter.expires

    # Moving windows, with the semantics of limits' MemoryStorage.

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire_now(key, limit, expiry, amount)

    def acquire_now(self, key: str, limit: int, expiry: int, amount: int = 1, others: int = 0) -> bool:
        """Record ``amount`` hits unless ``limit`` would be exceeded within the last ``expiry`` s,
        counting ``others`` hits that other processes made within it as well."""
        if amount + others > limit:
            return False
        now = time.time()
        value = self.windows.get(key)
        if value is None:
            self._make_room(self.windows, "window", now)
            if amount == 1:
                self.windows[key] = now + expiry
                return True
            window = self.windows[key] = _Window(now + expiry)
        else:
            self.windows.move_to_end(key)
            if isinstance(value, float):
                window = self.windows[key] = _Window(value)
                window.add(value - expiry, limit)
            else:
                window = value
            # Refused when the hit that ``amount`` more would push out of the limit is recent.
            oldest_kept = window.nth_newest(limit - others - amount + 1)
            if oldest_kept is not None and oldest_kept >= now - expiry:
                return False
        for _ in range(amount):
            window.add(now, limit)
        window.expires = now + expiry
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(time of the oldest hit within the window, hits within it); (now, 0) if none."""
        now = time.time()
        value = self.windows.get(key)
        if value is None:
            return now, 0
        if isinstance(value, float):
            stamp = value - expiry
            return (stamp, 1) if stamp > now - expiry else (now, 0)
        window, start, count = value, now, 0
        while (stamp := window.nth_newest(count + 1)) is not None and stamp > now - expiry:
            start, count = stamp, count + 1
        return start, count

    # Housekeeping.

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)
        self._counter_table(key)[0].pop(key, None)

    async def reset(self) -> int:
        count = sum(self.sizes().values())
        self.windows.clear()
        self.markers.clear()
        self.counters.clear()
        return count

    async def check(self) -> bool:
        return True


class BoundedMovingWindow(MovingWindowRateLimiter):
    """limits' moving-window strategy on ``BoundedMemoryStorage``, with the same keys and answers,
    at a fraction of the cost per hit: the storage is called directly, not through a coroutine
    (nothing in it waits), and each key is joined from parts made once per limit item."""

    def __init__(self, storage: BoundedMemoryStorage) -> None:
        super().__init__(storage)
        self.memory = storage
        self._key_parts: dict[RateLimitItem, tuple[str, str]] = {}

    def key_for(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> str:
        """``item.key_for(*identifiers)`` for text identifiers."""
        parts = self._key_parts.get(item)
        if parts is None:
            prefix, _, suffix = item.key_for("\0").partition("\0")
            parts = self._key_parts[item] = (prefix, suffix)
        return parts[0] + "/".join(identifiers) + parts[1]

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = self.key_for(item, identifiers)
        return self.memory.acquire_now(key, item.amount, item.get_expiry(), amount=cost)
