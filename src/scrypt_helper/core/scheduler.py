"""Admission control: a bounded queue in front of hash worker threads.

The event loop never computes. ``submit`` either queues a job at once or rejects it at
once: draining, the queue full, or a wait that would pass ``max_queue_wait``. That wait is
estimated from what the workers have measured while serving: each parameter set's recent
seconds per job, times the jobs queued, plus what is left of the running batches. So a
request that could not be served in time is refused when it arrives, not when its deadline
passes. A queued job that has not started within ``max_queue_wait`` all the same is
answered with ``DeadlineExceeded`` instead of being computed; a job whose caller goes
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
from collections.abc import Awaitable, Callable, Iterator
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


@dataclass(frozen=True, slots=True)
class Place:
    """A job's place in the queue, kept by ``Scheduler.promise``: the work it was counted for."""

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
# Weight of the newest batch in each parameter set's seconds-per-job average, and of the newest
# job in the correction of foreseen waits by real ones (within MIN/MAX_CALIBRATION, from waits of
# at least CALIBRATION_FLOOR x max_queue_wait).
SMOOTHING = 0.2
MIN_CALIBRATION = 0.5
MAX_CALIBRATION = 4.0
CALIBRATION_FLOOR = 0.1


def cost(params: ScryptParams) -> int:
    """Work of one hash relative to others: its memory-hard mixing touches ``romix_bytes`` p times."""
    return params.romix_bytes * params.p


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
        known to be on their way (see ``on_its_way``); 0 never holds one."""
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
        self._hint = job_seconds_hint
        self.niceness = niceness
        self._job_seconds: dict[ScryptParams, float] = {}  # measured, per allowed parameter set
        self._queued_seconds = 0.0  # estimated work of the queued jobs, in one worker's seconds
        self._batch_ends: dict[int, float] = {}  # each busy worker's expected end of its batch
        self._calibration = 1.0  # real waits over foreseen ones, recently
        self.batch_window = batch_window
        self._on_the_way = 0  # jobs admitted at early admission and not yet submitted (batch_window only)
        self._promised = 0  # jobs admitted by ``promise``, not yet submitted
        self._promised_seconds = 0.0  # their estimated work, in one worker's seconds
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
        measured = self._job_seconds.get(params)
        if measured is not None:
            return measured
        if self._hint is None or self._reserve is None:
            return 0.0
        return self._hint * cost(params) / cost(self._reserve)

    def expected_wait(self) -> float:
        """Seconds until a worker would start a job queued now."""
        with self._cond:
            return self._foreseen_wait() * self._calibration

    def check_admission(self) -> None:
        """Raise ``Draining`` or ``QueueFull`` if a job submitted now would be refused."""
        with self._cond:
            self._check_admission()

    def promise(self, params: ScryptParams) -> Place:
        """Admit a job of ``params`` before it is submitted: ``check_admission``, then keep its place
        in the estimate, so that the jobs judged meanwhile count it, until its job is submitted with
        it (``submit(place=...)``) or it is let go: the decision was made here, once."""
        with self._cond:
            self._check_admission()
            place = Place(self.job_seconds(params))
            self._promised += 1
            self._promised_seconds += place.seconds
            return place

    def let_go(self, place: Place) -> None:
        """Give back a place ``promise`` kept for a job that will never be submitted."""
        with self._cond:
            self._release(place)

    def _release(self, place: Place) -> None:
        self._promised = max(0, self._promised - 1)
        self._promised_seconds = max(0.0, self._promised_seconds - place.seconds) if self._promised else 0.0

    @contextlib.contextmanager
    def on_its_way(self) -> Iterator[None]:
        """While this block runs, a job is on its way (its body read and parsed): a worker may hold
        a short batch for it, up to ``batch_window``. Leave the block just before ``submit``."""
        if not self.batch_window:
            yield
            return
        with self._cond:
            self._on_the_way += 1
        try:
            yield
        finally:
            with self._cond:
                self._on_the_way -= 1
                self._cond.notify_all()

    @property
    def retry_after(self) -> float:
        """Seconds a rejected client should wait before trying again."""
        return self.max_queue_wait

    # -- the async side ---------------------------------------------------------------------------------

    def submit(
        self, params: ScryptParams, data: bytes, *, place: Place | None = None
    ) -> Awaitable[HashResult]:
        """Queue one hash now and return what awaits its result; raises a ``Rejected`` subclass
        instead of queueing a job that would wait too long.

        ``place``: the place ``promise`` kept for this job, which becomes the job in the same step
        (no other job can take it meanwhile); only a node shutting down refuses it now.
        Cancelling the awaiting task (client gone) takes a still-queued job out of the queue.
        """
        loop = asyncio.get_running_loop()
        item = _Item(params=params, data=data, future=loop.create_future(), loop=loop)
        with self._cond:
            if place is not None:
                self._release(place)
                if self._closing:
                    raise Draining("the node is shutting down")
                item.predicted = self._foreseen_wait()
            else:
                item.predicted = self._check_admission()
            item.seconds = self.job_seconds(params)
            self._queued_seconds += item.seconds
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
        if len(self._queue) + self._promised >= self.queue_size + self.workers - self._busy_workers:
            raise QueueFull("all workers are busy and the queue is full")
        foreseen = self._foreseen_wait()
        if foreseen * self._calibration > ADMISSION_MARGIN * self.max_queue_wait:
            raise QueueFull("no worker would be free within the maximum queue wait")
        return foreseen

    def _foreseen_wait(self) -> float:
        """The work ahead of a job queued now, per worker, by the measured seconds per job."""
        if len(self._queue) + self._promised < self.workers - self._busy_workers:
            return 0.0  # a worker is free for it
        now = time.monotonic()
        running = sum(max(0.0, end - now) for end in self._batch_ends.values())
        return (self._queued_seconds + self._promised_seconds + running) / self.workers

    def _calibrate(self, item: _Item, waited: float) -> None:
        """Fold a starting job's real wait against the one foreseen into the estimate's correction.

        The per-job times miss what lies between batches and how the machine's load shifts; the
        ratio of real to foreseen waits corrects for both. Only waits long enough to measure count.
        """
        # The floor is on the corrected wait, the one admission went by: on the raw one, a high
        # correction would make every foreseen wait look too short to learn from, and stick.
        if item.predicted * self._calibration < CALIBRATION_FLOOR * self.max_queue_wait:
            return
        ratio = min(max(waited / item.predicted, MIN_CALIBRATION), MAX_CALIBRATION)
        self._calibration += SMOOTHING * (ratio - self._calibration)

    def _dequeue(self, item: _Item) -> None:
        self._queue.remove(item)
        self._queued_seconds = max(0.0, self._queued_seconds - item.seconds)
        if not self._queue:
            self._queued_seconds = 0.0  # no rounding drift outlives an empty queue

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
                if lanes > 1 and self._on_the_way and len(self._queue) < lanes:
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
            self._batch_ends[threading.get_ident()] = now + sum(item.seconds for item in batch)
            return batch

    def _wait_for_company(self, lanes: int) -> None:
        """Hold a short batch up to ``batch_window`` while jobs are on their way (lock held)."""
        until = time.monotonic() + self.batch_window
        while self._on_the_way and len(self._queue) < lanes and not self._stopping:
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
                self._batch_ends.pop(threading.get_ident(), None)
                if outputs is not None:
                    self._learn(batch[0].params, hash_seconds / len(batch))
                self._cond.notify_all()
        if outputs is None:
            for item in batch:
                self._resolve(item, error=failure)
            return
        if self._on_batch is not None:  # before the answers, so a client never sees stale metrics
            self._on_batch(len(batch), hash_seconds)
        for item, output in zip(batch, outputs, strict=True):
            self._resolve(item, result=HashResult(output, started - item.enqueued, hash_seconds, len(batch)))

    def _learn(self, params: ScryptParams, per_job: float) -> None:
        """Fold one batch's seconds per job into its parameter set's average (holding the lock)."""
        known = self._job_seconds.get(params)
        self._job_seconds[params] = per_job if known is None else known + SMOOTHING * (per_job - known)

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
