"""Admission control: a bounded queue in front of hash worker threads.

The event loop never computes. ``submit`` either queues a job at once or rejects it at
once (queue full, draining); a queued job that has not started within ``max_queue_wait``
is answered with ``DeadlineExceeded`` instead of being computed; a job whose caller goes
away (client disconnected) leaves the queue. Each worker thread owns one engine context
and takes up to ``lanes`` queued jobs with the same parameters per batch, without ever
waiting for a batch to fill.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scrypt_helper.engines.base import Engine, HashContext, ScryptParams

logger = logging.getLogger("scrypt_helper.scheduler")


class Rejected(Exception):
    """The job was not computed; ``reason`` is a short metric label."""

    reason = "rejected"


class QueueFull(Rejected):
    reason = "queue_full"


class DeadlineExceeded(Rejected):
    reason = "deadline"


class Draining(Rejected):
    reason = "draining"


@dataclass(frozen=True, slots=True)
class HashResult:
    """A computed hash and where its time went."""

    output: bytes
    queue_seconds: float
    hash_seconds: float
    batch_size: int


class _State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(eq=False, slots=True)
class _Item:
    params: ScryptParams
    data: bytes
    future: asyncio.Future[HashResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)
    state: _State = _State.QUEUED


BatchObserver = Callable[[int, float], None]
# A worker wipes its hash state once it has found no work for this long: soon after the load
# stops, but not in the few milliseconds between a batch's answers and the next requests.
IDLE_WIPE_SECONDS = 0.25
# Workers run at a lower CPU priority than the event loop, so that on a machine whose cores
# they saturate, health checks and refusals are still answered at once.
WORKER_NICENESS = 10


def lower_priority() -> None:
    """Raise this thread's niceness (Linux applies it per thread); elsewhere do nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


class Scheduler:
    """Runs hash jobs on ``workers`` threads; at most ``queue_size`` jobs wait while all are busy."""

    def __init__(
        self,
        engine: Engine,
        *,
        workers: int,
        queue_size: int,
        max_queue_wait: float,
        on_batch: BatchObserver | None = None,
        idle_wipe_seconds: float = IDLE_WIPE_SECONDS,
        reserve: ScryptParams | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.engine = engine
        self.workers = workers
        self.queue_size = queue_size
        self.max_queue_wait = max_queue_wait
        self._on_batch = on_batch
        self.idle_wipe_seconds = idle_wipe_seconds
        self._reserve = reserve
        self._ready = threading.Semaphore(0)
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._running = 0
        self._busy_workers = 0
        self._closing = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads; return once each holds its buffers (see ``reserve``)."""
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"scrypt-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for _ in self._threads:
            self._ready.acquire()

    def begin_drain(self) -> None:
        """Refuse new jobs from now on; queued and running jobs still complete."""
        with self._cond:
            self._closing = True

    def close(self, timeout: float | None = None) -> bool:
        """Drain: refuse new jobs, finish queued and running ones, stop and wipe the workers.

        Returns False when ``timeout`` passed before the work was done.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closing = True
            drained = self._cond.wait_for(
                lambda: not self._queue and not self._running,
                None if deadline is None else max(0.0, deadline - time.monotonic()),
            )
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return drained and not any(thread.is_alive() for thread in self._threads)

    # -- state for health checks and metrics ------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Jobs being computed now."""
        return self._running

    @property
    def draining(self) -> bool:
        return self._closing

    @property
    def alive_workers(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    @property
    def retry_after(self) -> float:
        """Seconds a rejected client should wait before trying again."""
        return self.max_queue_wait

    # -- the async side ---------------------------------------------------------------------------------

    async def submit(self, params: ScryptParams, data: bytes) -> HashResult:
        """Queue one hash and wait for it; raises a ``Rejected`` subclass instead of waiting too long.

        Cancelling the awaiting task (client gone) takes a still-queued job out of the queue.
        """
        loop = asyncio.get_running_loop()
        item = _Item(params=params, data=data, future=loop.create_future(), loop=loop)
        with self._cond:
            if self._closing:
                raise Draining("the node is shutting down")
            if len(self._queue) >= self.queue_size + self.workers - self._busy_workers:
                raise QueueFull("all workers are busy and the queue is full")
            self._queue.append(item)
            self._cond.notify()
        timer = loop.call_later(self.max_queue_wait, self._expire, item)
        try:
            return await item.future
        finally:
            timer.cancel()
            self._withdraw(item)

    def _expire(self, item: _Item) -> None:
        if self._withdraw(item) and not item.future.done():
            item.future.set_exception(DeadlineExceeded("no worker was free in time"))

    def _withdraw(self, item: _Item) -> bool:
        """Take a still-queued item out of the queue; True if it was there."""
        with self._cond:
            if item.state is not _State.QUEUED:
                return False
            self._queue.remove(item)
            item.state = _State.DONE
            self._cond.notify_all()
            return True

    # -- the worker threads -----------------------------------------------------------------------------

    def _work(self) -> None:
        ctx: HashContext | None = None
        dirty = False
        lower_priority()
        try:
            try:
                ctx = self.engine.open_context()
                if self._reserve is not None:
                    ctx.reserve(self._reserve)
            finally:
                self._ready.release()
            while True:
                batch = self._take_batch(ctx.lanes, timeout=self.idle_wipe_seconds if dirty else None)
                if batch is None:
                    if self._stopping:
                        return
                    ctx.wipe()  # idle for idle_wipe_seconds: wipe the hash state before sleeping
                    dirty = False
                    continue
                self._run_batch(ctx, batch)
                dirty = True
        except BaseException:
            logger.exception("hash worker stopped")
            raise
        finally:
            if ctx is not None:
                ctx.close()

    def _take_batch(self, lanes: int, *, timeout: float | None) -> list[_Item] | None:
        """Pop the oldest job and up to ``lanes - 1`` more with the same parameters, at once.

        On an empty queue, sleep until a job comes, at most ``timeout`` seconds (None: no
        limit); return None on timeout or when the scheduler stops.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if (left <= 0 or not self._cond.wait(left)) and not self._queue:
                    return None
            first = self._queue.popleft()
            batch = [first]
            if lanes > 1:
                for item in list(self._queue):
                    if item.params == first.params:
                        self._queue.remove(item)
                        batch.append(item)
                        if len(batch) == lanes:
                            break
            for item in batch:
                item.state = _State.RUNNING
            self._running += len(batch)
            self._busy_workers += 1
            return batch

    def _run_batch(self, ctx: HashContext, batch: list[_Item]) -> None:
        started = time.monotonic()
        try:
            outputs = ctx.hash_batch(batch[0].params, [item.data for item in batch])
        except Exception as exc:  # every job of the batch gets the error
            logger.error("hash batch failed: %s", type(exc).__name__)
            for item in batch:
                self._resolve(item, error=exc)
        else:
            hash_seconds = time.monotonic() - started
            if self._on_batch is not None:  # before the answers, so a client never sees stale metrics
                self._on_batch(len(batch), hash_seconds)
            for item, output in zip(batch, outputs, strict=True):
                result = HashResult(output, started - item.enqueued, hash_seconds, len(batch))
                self._resolve(item, result=result)
        finally:
            with self._cond:
                self._running -= len(batch)
                self._busy_workers -= 1
                self._cond.notify_all()

    @staticmethod
    def _resolve(item: _Item, *, result: HashResult | None = None, error: Exception | None = None) -> None:
        item.state = _State.DONE

        def settle() -> None:
            if item.future.done():  # the caller went away meanwhile
                return
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)  # type: ignore[arg-type]

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            item.loop.call_soon_threadsafe(settle)
