"""Admission control: a bounded queue in front of hash worker threads.

The event loop never computes. ``submit`` either queues a job at once or rejects it at
once: draining, the queue full, or a wait that would pass ``max_queue_wait`` by the
``WaitEstimate`` (``core.wait_estimate``). So a request that could not be served in time is
refused when it arrives, not when its deadline passes. A queued job that has not started
within ``max_queue_wait`` all the same is answered with ``DeadlineExceeded`` instead of being
computed; a job whose caller goes away (client disconnected) leaves the queue. Each worker
thread owns one engine context and takes up to ``lanes`` queued jobs with the same
parameters per batch, without ever waiting for a batch to fill.
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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from scrypt_helper.core.wait_estimate import WaitEstimate
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


@dataclass(frozen=True, slots=True)
class HeldPlace:
    """A place in the queue held by ``Scheduler.hold_place`` for a job admitted before it is
    submitted: the work it was counted for."""

    seconds: float


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
    seconds: float = 0.0  # its estimated share of a worker's time, counted while it is queued
    predicted: float = 0.0  # the wait foreseen for it when it was admitted, before correction
    enqueued: float = field(default_factory=time.monotonic)
    state: _State = _State.QUEUED


BatchObserver = Callable[[int, float], None]
# A worker wipes its hash state once it has found no work for this long: soon after the load
# stops, but not in the few milliseconds between a batch's answers and the next requests.
IDLE_WIPE_SECONDS = 0.25
# Workers run at a lower CPU priority than the event loop (by default), so that on a machine whose
# cores they saturate, health checks and refusals are answered soon; not so low that a busy loop
# starves them (docs/design.md, "Workers run a little below the event loop").
WORKER_NICENESS = 5
# A job is admitted only if a worker is expected to start it within this share of max_queue_wait:
# the estimate is an average, and the rest absorbs its error before the deadline would expire it.
ADMISSION_MARGIN = 0.6


def lower_priority(niceness: int) -> None:
    """Raise this thread's niceness (Linux applies it per thread); elsewhere do nothing."""
    if niceness:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


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
        job_seconds_hint: float | None = None,
        niceness: int = WORKER_NICENESS,
        batch_window: float = 0.0,
    ) -> None:
        """``job_seconds_hint``: a worker's seconds per ``reserve`` job (timed at start-up), the
        estimate until batches have been measured; without it, waits count only measured work.
        ``batch_window``: seconds a worker may hold a batch short of its lanes while more jobs are
        expected (see ``expecting_job``); 0 never holds one."""
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
        self.niceness = niceness
        self.estimate = WaitEstimate(hint=job_seconds_hint, reference=reserve)
        self.batch_window = batch_window
        self._expected = 0  # jobs whose bodies are being read, not yet submitted (batch_window only)
        self._closing = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads; return once each holds its buffers (see ``reserve``).

        Once started, a second call does nothing: a front process starts its workers before it
        meets the node's other processes, and the app's lifespan then finds them running."""
        if self._threads:
            return
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

    def job_seconds(self, params: ScryptParams) -> float:
        """A worker's recent seconds per job of ``params`` in a batch (before any: the start-up hint)."""
        return self.estimate.job_seconds(params)

    def expected_wait(self) -> float:
        """Seconds until a worker would start a job queued now."""
        with self._cond:
            return self._foreseen_wait() * self.estimate.correction

    def check_admission(self) -> None:
        """Raise ``Draining`` or ``QueueFull`` if a job submitted now would be refused."""
        with self._cond:
            self._check_admission()

    def hold_place(self, params: ScryptParams) -> HeldPlace:
        """Admit a job of ``params`` before it is submitted: ``check_admission``, then hold its place
        in the estimate, so that the jobs judged meanwhile count it, until its job is submitted with
        it (``submit(place=...)``) or the place is released: the decision was made here, once."""
        with self._cond:
            self._check_admission()
            place = HeldPlace(self.job_seconds(params))
            self.estimate.hold(place.seconds)
            return place

    def release_place(self, place: HeldPlace) -> None:
        """Give back a place ``hold_place`` held for a job that will never be submitted."""
        with self._cond:
            self.estimate.release(place.seconds)

    @contextlib.contextmanager
    def expecting_job(self) -> Iterator[None]:
        """While this block runs, a job is expected (its body being read and parsed): a worker may
        hold a short batch for it, up to ``batch_window``. Leave the block just before ``submit``."""
        if not self.batch_window:
            yield
            return
        with self._cond:
            self._expected += 1
        try:
            yield
        finally:
            with self._cond:
                self._expected -= 1
                self._cond.notify_all()

    @property
    def retry_after(self) -> float:
        """Seconds a rejected client should wait before trying again."""
        return self.max_queue_wait

    # -- the async side ---------------------------------------------------------------------------------

    def submit(
        self, params: ScryptParams, data: bytes, *, place: HeldPlace | None = None
    ) -> Awaitable[HashResult]:
        """Queue one hash now and return what awaits its result; raises a ``Rejected`` subclass
        instead of queueing a job that would wait too long.

        ``place``: the place ``hold_place`` held for this job, which becomes the job in the same step
        (no other job can take it meanwhile); only a node shutting down refuses it now.
        Cancelling the awaiting task (client gone) takes a still-queued job out of the queue.
        """
        loop = asyncio.get_running_loop()
        item = _Item(params=params, data=data, future=loop.create_future(), loop=loop)
        with self._cond:
            if place is not None:
                self.estimate.release(place.seconds)
                if self._closing:
                    raise Draining("the node is shutting down")
                item.predicted = self._foreseen_wait()
            else:
                item.predicted = self._check_admission()
            item.seconds = self.job_seconds(params)
            self.estimate.queued(item.seconds)
            self._queue.append(item)
            self._cond.notify()
        timer = loop.call_later(self.max_queue_wait, self._expire, item)
        return self._result(item, timer)

    async def _result(self, item: _Item, timer: asyncio.TimerHandle) -> HashResult:
        try:
            return await item.future
        finally:
            timer.cancel()
            self._withdraw(item)

    def _check_admission(self) -> float:
        """Raise to refuse a job now; else return the wait foreseen for it, before correction."""
        if self._closing:
            raise Draining("the node is shutting down")
        if len(self._queue) + self.estimate.held >= self.queue_size + self.workers - self._busy_workers:
            raise QueueFull("all workers are busy and the queue is full")
        foreseen = self._foreseen_wait()
        if foreseen * self.estimate.correction > ADMISSION_MARGIN * self.max_queue_wait:
            raise QueueFull("no worker would be free within the maximum queue wait")
        return foreseen

    def _foreseen_wait(self) -> float:
        """The work ahead of a job queued now, per worker, by the measured seconds per job."""
        if len(self._queue) + self.estimate.held < self.workers - self._busy_workers:
            return 0.0  # a worker is free for it
        return self.estimate.foreseen(self.workers, time.monotonic())

    def _calibrate(self, item: _Item, waited: float) -> None:
        """Correct the estimate by a job's real wait against the one foreseen for it."""
        self.estimate.calibrate(item.predicted, waited, self.max_queue_wait)

    def _dequeue(self, item: _Item) -> None:
        self._queue.remove(item)
        self.estimate.dequeued(item.seconds, queue_empty=not self._queue)

    def _expire(self, item: _Item) -> None:
        # Its wait was at least the whole deadline: the estimate learns from the jobs it admitted
        # wrongly too, not only from those that started (which would bias it towards admitting).
        if self._withdraw(item, waited=self.max_queue_wait) and not item.future.done():
            item.future.set_exception(DeadlineExceeded("no worker was free in time"))

    def _withdraw(self, item: _Item, waited: float | None = None) -> bool:
        """Take a still-queued item out of the queue; True if it was there. ``waited``: how long it
        waited, to correct the estimate by (None: it left for another reason, and tells nothing)."""
        with self._cond:
            if item.state is not _State.QUEUED:
                return False
            if waited is not None:
                self._calibrate(item, waited)
            self._dequeue(item)
            item.state = _State.DONE
            self._cond.notify_all()
            return True

    # -- the worker threads -----------------------------------------------------------------------------

    def _work(self) -> None:
        ctx: HashContext | None = None
        dirty = False
        lower_priority(self.niceness)
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
            while True:
                while not self._queue:
                    if self._stopping:
                        return None
                    if deadline is None:
                        self._cond.wait()
                        continue
                    left = deadline - time.monotonic()
                    if (left <= 0 or not self._cond.wait(left)) and not self._queue:
                        return None
                if lanes > 1 and self._expected and len(self._queue) < lanes:
                    self._wait_for_company(lanes)
                if self._queue:  # another worker may have taken them meanwhile
                    break
            first = self._queue[0]
            batch = [first]
            if lanes > 1:
                for item in self._queue:
                    if item is not first and item.params == first.params:
                        batch.append(item)
                        if len(batch) == lanes:
                            break
            now = time.monotonic()
            for item in batch:
                self._dequeue(item)
                self._calibrate(item, now - item.enqueued)
                item.state = _State.RUNNING
            self._running += len(batch)
            self._busy_workers += 1
            self.estimate.batch_started(threading.get_ident(), now + sum(item.seconds for item in batch))
            return batch

    def _wait_for_company(self, lanes: int) -> None:
        """Hold a short batch up to ``batch_window`` while jobs are expected (lock held)."""
        until = time.monotonic() + self.batch_window
        while self._expected and len(self._queue) < lanes and not self._stopping:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _run_batch(self, ctx: HashContext, batch: list[_Item]) -> None:
        started = time.monotonic()
        outputs: list[bytes] | None = None
        failure: Exception | None = None
        try:
            outputs = ctx.hash_batch(batch[0].params, [item.data for item in batch])
        except Exception as exc:  # every job of the batch gets the error
            failure = exc
            logger.error("hash batch failed: %s", type(exc).__name__)
        finally:
            hash_seconds = time.monotonic() - started
            # The worker is free before anyone is answered: a client's next request finds it so.
            with self._cond:
                self._running -= len(batch)
                self._busy_workers -= 1
                self.estimate.batch_ended(threading.get_ident())
                if outputs is not None:
                    self.estimate.learn(batch[0].params, hash_seconds / len(batch))
                self._cond.notify_all()
        if outputs is None:
            for item in batch:
                self._resolve(item, error=failure)
            return
        if self._on_batch is not None:  # before the answers, so a client never sees stale metrics
            self._on_batch(len(batch), hash_seconds)
        for item, output in zip(batch, outputs, strict=True):
            self._resolve(item, result=HashResult(output, started - item.enqueued, hash_seconds, len(batch)))

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
