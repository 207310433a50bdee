"""A clock a test moves, for logic that reads the time: no test sleeps to see a window end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scrypt_helper.abuse import bounded_windows, guard, store


class Clock:
    """``now`` seconds, read by calling the clock; ``advance`` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def control_abuse_time(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the limits' windows, bans and blocks (their ``time.time`` and ``time.monotonic``);
    the event loop keeps the real one."""
    clock = Clock()
    fake = SimpleNamespace(time=clock, monotonic=clock)
    for module in (bounded_windows, guard, store):
        monkeypatch.setattr(module, "time", fake)
    return clock
