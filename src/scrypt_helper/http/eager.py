"""Run a coroutine at once, on the caller's stack, as far as it goes without waiting.

A judgement that waits for nothing (limits in memory) then costs no task and no loop turn, and
code that cannot await (an HTTP protocol's parser callbacks) gets its result at once. One that
waits all the same goes on as a task from where it stopped. Its first step runs in no task, so
code that needs one (``asyncio.timeout``, the Redis client) must be started as a task instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """The result of a coroutine that finished without waiting."""

    value: T


def run_eagerly(coroutine: Coroutine[Any, Any, T]) -> Done[T] | asyncio.Task[T]:
    """``coroutine``'s result if it finishes without waiting, else a task that goes on with it.
    An exception it raises before it waits is raised here."""
    try:
        awaited = coroutine.send(None)
    except StopIteration as finished:
        return Done(finished.value)
    return asyncio.ensure_future(_Resumed(coroutine, awaited))


class _Resumed(Generic[T]):
    """A coroutine already started: awaiting this hands on what it awaits, then its result."""

    def __init__(self, coroutine: Coroutine[Any, Any, T], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, awaited = self._coroutine, self._awaited
        while True:
            try:
                sent = yield awaited
            except BaseException as exc:  # thrown in by the task: a cancellation
                try:
                    awaited = coroutine.throw(exc)
                except StopIteration as finished:
                    return finished.value  # type: ignore[no-any-return]
                continue
            try:
                awaited = coroutine.send(sent)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
