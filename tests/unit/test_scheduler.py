"""Admission control with a controllable engine: queue full, deadlines, cancellation, drain, batching."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Sequence

import pytest

from scrypt_helper.core.scheduler import DeadlineExceeded, Draining, HeldPlace, QueueFull, Scheduler
from scrypt_helper.engines import Engine, HashContext, ScryptParams

A = ScryptParams(salt=b"a", n=16, r=1, p=1, buflen=16)
B = ScryptParams(salt=b"b", n=16, r=1, p=1, buflen=16)


class GatedEngine(Engine):
    """Each batch waits for ``gate``; answers sha256(salt + input) and records batches and wipes."""

    name = "gated"

    def __init__(self, lanes: int = 1) -> None:
        self.lanes = lanes
        self.gate = threading.Event()
        self.batches: list[tuple[ScryptParams, list[bytes]]] = []
        self.started = threading.Semaphore(0)
        self.wipes = 0
        self.closed = 0

    def open_context(self) -> HashContext:
        engine = self

        class Context(HashContext):
            lanes = engine.lanes

            def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
                engine.batches.append((params, list(inputs)))
                engine.started.release()
                assert engine.gate.wait(10), "test never opened the gate"
                return [hashlib.sha256(params.salt + data).digest()[: params.buflen] for data in inputs]

            def wipe(self) -> None:
                engine.wipes += 1

            def close(self) -> None:
                engine.closed += 1

        return Context()


def expected(params: ScryptParams, data: bytes) -> bytes:
    return hashlib.sha256(params.salt + data).digest()[: params.buflen]


def make(
    engine: GatedEngine, *, workers: int = 1, queue_size: int = 4, max_queue_wait: float = 5.0
) -> Scheduler:
    scheduler = Scheduler(engine, workers=workers, queue_size=queue_size, max_queue_wait=max_queue_wait)
    scheduler.start()
    return scheduler


async def one_worker_held(
    engine: GatedEngine, *, queue_size: int, max_queue_wait: float, hint: float
) -> tuple[Scheduler, asyncio.Future[object]]:
    """A started one-worker scheduler whose worker holds a job at the engine's gate; that job.
    By the start-up estimate a job of ``A`` takes the worker ``hint`` seconds."""
    scheduler = Scheduler(
        engine,
        workers=1,
        queue_size=queue_size,
        max_queue_wait=max_queue_wait,
        reserve=A,
        job_seconds_hint=hint,
    )
    scheduler.start()
    running = asyncio.ensure_future(scheduler.submit(A, b"running"))
    await asyncio.to_thread(engine.started.acquire)
    return scheduler, running


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


async def test_a_job_is_computed_and_timed():
    engine = GatedEngine()
    engine.gate.set()
    scheduler = make(engine)
    result = await scheduler.submit(A, b"x")
    assert result.output == expected(A, b"x")
    assert result.batch_size == 1
    assert result.queue_seconds >= 0
    assert result.hash_seconds >= 0
    assert scheduler.close(timeout=5)


async def test_full_queue_rejects_at_once():
    engine = GatedEngine()
    scheduler = make(engine, workers=1, queue_size=2)
    running = asyncio.ensure_future(scheduler.submit(A, b"running"))
    await asyncio.to_thread(engine.started.acquire)
    queued = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(2)]
    await until(lambda: scheduler.depth == 2)
    started = time.monotonic()
    with pytest.raises(QueueFull):
        await scheduler.submit(A, b"one too many")
    assert time.monotonic() - started < 0.05
    engine.gate.set()
    results = await asyncio.gather(running, *queued)
    assert [r.output for r in results] == [expected(A, d) for d in (b"running", b"\x00", b"\x01")]
    assert scheduler.close(timeout=5)


async def test_a_job_that_waited_past_its_deadline_is_not_computed():
    engine = GatedEngine()
    scheduler = make(engine, workers=1, queue_size=4, max_queue_wait=0.2)
    running = asyncio.ensure_future(scheduler.submit(A, b"running"))
    await asyncio.to_thread(engine.started.acquire)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await scheduler.submit(A, b"late")
    assert 0.15 < time.monotonic() - started < 1.0
    assert scheduler.depth == 0
    engine.gate.set()
    await running
    assert scheduler.close(timeout=5)
    assert [inputs for _, inputs in engine.batches] == [[b"running"]]


async def test_a_job_admitted_and_expired_makes_later_estimates_longer():
    # The estimate foresaw 0.1 s for the job behind the running one; it waited out the whole
    # 0.5 s deadline. Learning only from jobs that start would never see that it was wrong.
    engine = GatedEngine()
    scheduler, running = await one_worker_held(engine, queue_size=4, max_queue_wait=0.5, hint=0.1)
    assert scheduler.estimate.correction == 1.0
    with pytest.raises(DeadlineExceeded):
        await scheduler.submit(A, b"late")
    assert scheduler.estimate.correction > 1.5  # the next estimates are half again as long, or more
    engine.gate.set()
    await running
    assert scheduler.close(timeout=5)


async def test_a_cancelled_job_leaves_the_queue_and_is_never_computed():
    engine = GatedEngine()
    scheduler = make(engine, workers=1)
    running = asyncio.ensure_future(scheduler.submit(A, b"running"))
    await asyncio.to_thread(engine.started.acquire)
    gone = asyncio.ensure_future(scheduler.submit(A, b"gone"))
    await until(lambda: scheduler.depth == 1)
    gone.cancel()
    await until(lambda: scheduler.depth == 0)
    engine.gate.set()
    await running
    assert await scheduler.submit(A, b"after") is not None
    assert scheduler.close(timeout=5)
    assert [inputs for _, inputs in engine.batches] == [[b"running"], [b"after"]]


async def test_drain_answers_queued_and_running_jobs_and_refuses_new_ones():
    engine = GatedEngine()
    scheduler = make(engine, workers=1, queue_size=8)
    jobs = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(4)]
    await asyncio.to_thread(engine.started.acquire)
    closing = asyncio.ensure_future(asyncio.to_thread(scheduler.close, 10))
    await until(lambda: scheduler.draining)
    with pytest.raises(Draining):
        await scheduler.submit(A, b"new")
    engine.gate.set()
    results = await asyncio.gather(*jobs)
    assert [r.output for r in results] == [expected(A, bytes([i])) for i in range(4)]
    assert await closing is True
    assert scheduler.alive_workers == 0
    assert engine.closed == 1


async def test_batches_take_same_parameter_jobs_up_to_the_lanes():
    engine = GatedEngine(lanes=3)
    scheduler = make(engine, workers=1, queue_size=16)
    first = asyncio.ensure_future(scheduler.submit(A, b"first"))
    await asyncio.to_thread(engine.started.acquire)
    order = [(A, b"a1"), (B, b"b1"), (A, b"a2"), (A, b"a3"), (A, b"a4"), (B, b"b2")]
    jobs = [asyncio.ensure_future(scheduler.submit(p, d)) for p, d in order]
    await until(lambda: scheduler.depth == len(order))
    engine.gate.set()
    results = await asyncio.gather(first, *jobs)
    assert [r.output for r in results[1:]] == [expected(p, d) for p, d in order]
    assert [(p.salt, inputs) for p, inputs in engine.batches] == [
        (b"a", [b"first"]),  # a lone job runs at once, without waiting for company
        (b"a", [b"a1", b"a2", b"a3"]),
        (b"b", [b"b1", b"b2"]),
        (b"a", [b"a4"]),
    ]
    assert scheduler.close(timeout=5)


async def test_workers_run_in_parallel():
    engine = GatedEngine()
    scheduler = make(engine, workers=3, queue_size=0)
    jobs = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(3)]
    for _ in range(3):
        assert await asyncio.to_thread(engine.started.acquire, True, 5)
    assert scheduler.in_flight == 3
    engine.gate.set()
    await asyncio.gather(*jobs)
    assert scheduler.close(timeout=5)


async def test_idle_worker_wipes_its_state():
    engine = GatedEngine()
    engine.gate.set()
    scheduler = make(engine)
    await scheduler.submit(A, b"x")
    await until(lambda: engine.wipes == 1)
    assert scheduler.close(timeout=5)


async def test_an_engine_error_fails_the_batch_but_not_the_worker():
    class Flaky(GatedEngine):
        def open_context(self) -> HashContext:
            inner = super().open_context()
            calls = []

            class Context(HashContext):
                def hash_batch(self, params, inputs):
                    calls.append(1)
                    if len(calls) == 1:
                        raise MemoryError("no room")
                    return inner.hash_batch(params, inputs)

            return Context()

    engine = Flaky()
    engine.gate.set()
    scheduler = make(engine)
    with pytest.raises(MemoryError):
        await scheduler.submit(A, b"x")
    assert (await scheduler.submit(A, b"y")).output == expected(A, b"y")
    assert scheduler.alive_workers == 1
    assert scheduler.close(timeout=5)


async def test_no_wipe_between_batches_that_follow_each_other():
    engine = GatedEngine()
    engine.gate.set()
    scheduler = Scheduler(engine, workers=1, queue_size=4, max_queue_wait=5, idle_wipe_seconds=0.5)
    scheduler.start()
    for data in (b"a", b"b", b"c"):
        await scheduler.submit(A, data)
    assert engine.wipes == 0  # busy: the next batch overwrites the state anyway
    await until(lambda: engine.wipes == 1)
    assert scheduler.close(timeout=5)


async def test_start_returns_once_every_worker_holds_its_buffers():
    reserved = []

    class Reserving(GatedEngine):
        def open_context(self) -> HashContext:
            ctx = super().open_context()
            ctx.reserve = lambda params: (time.sleep(0.2), reserved.append(params))  # type: ignore[method-assign]
            return ctx

    engine = Reserving()
    scheduler = Scheduler(engine, workers=3, queue_size=4, max_queue_wait=5, reserve=B)
    began = time.monotonic()
    await asyncio.to_thread(scheduler.start)
    assert time.monotonic() - began >= 0.2
    assert reserved == [B, B, B]
    assert scheduler.close(timeout=5)


async def test_a_job_that_could_not_start_in_time_is_refused_on_arrival():
    # Each job takes a worker ~10 s by the start-up estimate; jobs may wait up to 34 s, so a job
    # is admitted while a worker is expected within 0.6 x 34 = 20.4 s.
    engine = GatedEngine()
    scheduler, running = await one_worker_held(engine, queue_size=100, max_queue_wait=34.0, hint=10.0)
    queued = []
    for count, expected_wait in enumerate((10.0, 20.0), start=1):
        assert scheduler.expected_wait() == pytest.approx(expected_wait, abs=0.5)
        queued.append(asyncio.ensure_future(scheduler.submit(A, b"queued")))
        await until(lambda count=count: scheduler.depth == count)
    started = time.monotonic()
    with pytest.raises(QueueFull, match="maximum queue wait"):
        await scheduler.submit(A, b"would wait 30 s")  # over 20.4 s: refused
    assert time.monotonic() - started < 1.0  # refused at once, not at its deadline
    with pytest.raises(QueueFull):
        scheduler.check_admission()
    assert scheduler.depth == 2
    engine.gate.set()
    await asyncio.gather(running, *queued)
    assert scheduler.close(timeout=5)


async def test_the_wait_estimate_follows_the_speed_measured_while_serving():
    # The start-up estimate (100 s a job) would refuse every job but the first; the batches
    # measured since (instant) admit as many as the queue holds.
    engine = GatedEngine()
    scheduler = Scheduler(
        engine, workers=1, queue_size=5, max_queue_wait=5.0, reserve=A, job_seconds_hint=100.0
    )
    scheduler.start()
    engine.gate.set()
    await scheduler.submit(A, b"measured")
    await asyncio.to_thread(engine.started.acquire)
    assert scheduler.job_seconds(A) < 1.0
    engine.gate.clear()
    running = asyncio.ensure_future(scheduler.submit(A, b"running"))
    await asyncio.to_thread(engine.started.acquire)
    queued = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(5)]
    await until(lambda: scheduler.depth == 5)
    with pytest.raises(QueueFull, match="queue is full"):
        await scheduler.submit(A, b"beyond the queue's memory bound")
    engine.gate.set()
    assert len(await asyncio.gather(running, *queued)) == 6
    assert scheduler.close(timeout=5)


def test_other_parameters_are_estimated_from_their_cost_until_measured():
    bigger = ScryptParams(salt=b"a", n=64, r=1, p=2, buflen=16)
    scheduler = Scheduler(
        GatedEngine(), workers=1, queue_size=1, max_queue_wait=1.0, reserve=A, job_seconds_hint=0.5
    )
    assert scheduler.job_seconds(A) == 0.5
    assert scheduler.job_seconds(bigger) == pytest.approx(0.5 * 4 * 2)


class SleepingEngine(GatedEngine):
    """Each batch takes ``seconds`` of wall time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.gate.set()
        self.seconds = seconds

    def open_context(self) -> HashContext:
        context = super().open_context()
        inner = context.hash_batch

        def slow(params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
            time.sleep(self.seconds)
            return inner(params, inputs)

        context.hash_batch = slow  # type: ignore[method-assign]
        return context


async def test_real_waits_correct_the_foreseen_ones():
    # The start-up estimate says 0.05 s a job; each really takes 0.1 s. The jobs that started
    # later than foreseen correct every later estimate, and so the admissions.
    scheduler = Scheduler(
        SleepingEngine(0.1), workers=1, queue_size=50, max_queue_wait=2.0, reserve=A, job_seconds_hint=0.05
    )
    scheduler.start()
    jobs = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(12)]
    await asyncio.gather(*jobs)
    assert scheduler.estimate.correction > 1.3  # jobs waited about twice as long as foreseen
    assert scheduler.expected_wait() == pytest.approx(
        scheduler._foreseen_wait() * scheduler.estimate.correction
    )
    assert scheduler.close(timeout=5)


async def test_a_high_correction_comes_back_down_when_jobs_start_as_foreseen():
    # Expired jobs pushed the correction to its top; the estimate itself is right again (0.05 s a
    # job, as measured). Corrected, the foreseen waits are long enough to learn from, and the
    # correction must fall back, not stay stuck because the raw waits look short.
    scheduler = Scheduler(
        SleepingEngine(0.05), workers=1, queue_size=50, max_queue_wait=5.0, reserve=A, job_seconds_hint=0.05
    )
    scheduler.start()
    scheduler.estimate.correction = 4.0
    jobs = [asyncio.ensure_future(scheduler.submit(A, bytes([i]))) for i in range(12)]
    await asyncio.gather(*jobs)
    assert scheduler.estimate.correction < 2.0
    assert scheduler.close(timeout=5)


async def test_a_short_batch_waits_for_an_expected_job():
    engine = GatedEngine(lanes=2)
    engine.gate.set()
    scheduler = Scheduler(engine, workers=1, queue_size=4, max_queue_wait=5.0, batch_window=5.0)
    scheduler.start()
    with scheduler.expecting_job():  # the second job's body is being read
        first = asyncio.ensure_future(scheduler.submit(A, b"first"))
        await asyncio.sleep(0.1)
        assert not first.done()  # held for the job on its way
        second = asyncio.ensure_future(scheduler.submit(A, b"second"))
        await asyncio.gather(first, second)
    assert [inputs for _, inputs in engine.batches] == [[b"first", b"second"]]
    assert scheduler.close(timeout=5)


async def test_a_short_batch_waits_no_longer_than_the_window():
    engine = GatedEngine(lanes=2)
    engine.gate.set()
    scheduler = Scheduler(engine, workers=1, queue_size=4, max_queue_wait=5.0, batch_window=0.2)
    scheduler.start()
    with scheduler.expecting_job():  # a job that never comes
        started = time.monotonic()
        await scheduler.submit(A, b"alone")
        assert 0.15 < time.monotonic() - started < 2.0
    assert [inputs for _, inputs in engine.batches] == [[b"alone"]]
    assert scheduler.close(timeout=5)


async def test_without_a_window_no_batch_waits():
    engine = GatedEngine(lanes=2)
    engine.gate.set()
    scheduler = make(engine)
    with scheduler.expecting_job():
        await scheduler.submit(A, b"first")  # answered alone, though a job is on its way
        await scheduler.submit(A, b"second")
    assert [inputs for _, inputs in engine.batches] == [[b"first"], [b"second"]]
    assert scheduler.close(timeout=5)


def test_starting_twice_starts_the_workers_once():
    scheduler = make(GatedEngine(), workers=2)
    scheduler.start()
    assert scheduler.alive_workers == 2
    assert scheduler.close(timeout=5)


async def test_a_held_place_counts_until_its_job_takes_it_and_the_job_is_not_judged_again():
    engine = GatedEngine()
    scheduler = make(engine, workers=1, queue_size=0)  # one place: the worker's
    place = scheduler.hold_place(A)
    with pytest.raises(QueueFull):
        scheduler.hold_place(A)  # the place is kept for the first
    with pytest.raises(QueueFull):
        scheduler.check_admission()
    work = scheduler.submit(A, b"promised", place=place)  # the place becomes the job, in one step
    with pytest.raises(QueueFull):
        scheduler.hold_place(A)  # still taken: by the queued job now
    engine.gate.set()
    result = await work
    assert result.output == expected(A, b"promised")
    scheduler.release_place(scheduler.hold_place(A))  # free again
    assert scheduler.close(timeout=5)
    with pytest.raises(Draining):
        await scheduler.submit(A, b"late", place=HeldPlace(0.0))  # only shutting down refuses it
