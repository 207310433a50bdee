"""A client's memory of its helper base URLs (one per region): which failed lately, and the order to try.

A URL whose attempt failed (connection error, time-out, 5xx) is *down* for ``cooldown`` seconds.
Calls made meanwhile try every live URL first, in the order given, and the down ones after them,
the one that failed longest ago first: a down URL is tried last, never skipped, so a call still
reaches it when all the others fail too. An answer from a URL clears its mark at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

#: Seconds a failed URL is tried last (``cooldown=``): long enough that calls stop paying for a dead
#: region at every call, short enough that traffic returns soon after the region does.
DEFAULT_COOLDOWN = 30.0


def base_urls(url: str | Sequence[str] | None) -> tuple[str, ...]:
    """The base URLs of a ``url=`` argument: one string, several (duplicates dropped), or none."""
    if url is None:
        return ()
    if isinstance(url, str):
        return (url,)
    urls = tuple(dict.fromkeys(url))
    if not urls:
        raise ValueError("give at least one helper URL, or None to compute locally")
    if not all(isinstance(one, str) for one in urls):
        raise ValueError("helper URLs must be strings")
    return urls


class UrlHealth:
    """Which of ``urls`` failed in the last ``cooldown`` seconds; safe to share between threads."""

    def __init__(
        self, urls: Sequence[str], cooldown: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.urls = tuple(urls)
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = dict.fromkeys(self.urls, float("-inf"))

    def order(self) -> list[str]:
        """Every URL, live ones first in the given order, then down ones by the end of their cool-down."""
        now = self._clock()
        with self._lock:
            until = dict(self._down_until)
        live = [url for url in self.urls if until[url] <= now]
        down = sorted((url for url in self.urls if until[url] > now), key=until.__getitem__)
        return live + down

    def is_down(self, url: str) -> bool:
        with self._lock:
            return self._down_until[url] > self._clock()

    def failed(self, url: str) -> None:
        """``url`` failed: try it last until ``cooldown`` seconds from now."""
        with self._lock:
            self._down_until[url] = self._clock() + self.cooldown

    def answered(self, url: str) -> None:
        """``url`` answered: it is live again."""
        with self._lock:
            self._down_until[url] = float("-inf")
