"""Run a load generator in a process of its own and wait for its result.

A generator sharing a process (and its GIL and event loop) with the code that times the node
would slow that code and measure itself; in a child of its own its CPU time is its own too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed: its loop costs a request about half as much."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# Children fork from one server process per parent (multiprocessing's forkserver) that has the load
# generator and its event loop imported: a child starts in a few milliseconds of CPU, where a spawned
# one imports everything again (about 0.7 s). Forking the parent itself would copy its threads' locks.
PRELOAD = ["scrypt_helper.bench.load", "uvloop"]
CONTEXT = multiprocessing.get_context("forkserver")


def _call(target: Callable[..., T], args: tuple[Any, ...], out: multiprocessing.Queue) -> None:
    out.put(target(*args))


class Child(Generic[T]):
    """``target(*args)`` in a process of its own; ``result()`` waits for what it returns.

    ``target`` and ``args`` must pickle: a module-level function and plain values.
    """

    def __init__(self, target: Callable[..., T], *args: Any) -> None:
        CONTEXT.set_forkserver_preload(PRELOAD)  # read when the server starts, with the first child
        self._out: multiprocessing.Queue = CONTEXT.Queue()
        self._process = CONTEXT.Process(target=_call, args=(target, args, self._out), daemon=True)

    def start(self) -> Child[T]:
        self._process.start()
        return self

    def running(self) -> bool:
        """Still at work: alive, and no result yet."""
        return self._process.is_alive() and self._out.empty()

    def result(self, timeout: float) -> T:
        """The child's result; RuntimeError if it died without one, TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value: T = self._out.get(timeout=1)
                break
            except queue.Empty:
                if not self._process.is_alive() and self._out.empty():
                    raise RuntimeError(f"the generator died (exit {self._process.exitcode})") from None
                if time.monotonic() > deadline:
                    self._process.kill()
                    raise TimeoutError(f"no result from the generator after {timeout:.0f} s") from None
        self._process.join(10)
        return value
