"""One node's parts, assembled in one place: engine, scheduler, limits, metrics and request log.

``build_node(settings)`` is the only place that wires them; the web layer receives the
finished ``Node`` and never builds anything itself.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from scrypt_helper.abuse import Guard, LimitStore
from scrypt_helper.core.config import Settings
from scrypt_helper.core.scheduler import Scheduler
from scrypt_helper.core.secret_memory import memlock_shortfall
from scrypt_helper.core.wait_estimate import cost
from scrypt_helper.engines import Engine, EngineUnavailable, ScryptParams, select_engine
from scrypt_helper.observability.log import SummaryLog
from scrypt_helper.observability.metrics import Metrics

logger = logging.getLogger("scrypt_helper.node")


@dataclass
class Node:
    """What one running node's routes share."""

    settings: Settings
    scheduler: Scheduler
    metrics: Metrics
    guard: Guard
    summary_log: SummaryLog = field(default_factory=SummaryLog)
    draining: bool = False


def build_node(settings: Settings, engine: Engine | None = None) -> Node:
    """Choose and self-test the engine (unless one is given), size the queue, wire metrics and limits."""
    if engine is None:
        engine = select_engine(settings.engine)
    if settings.lock_memory:
        lock_buffers(engine, settings)  # before the first context below allocates anything
    costliest = max(settings.scrypt_params, key=cost)
    # A worker's seconds per job, until it has measured its own while serving.
    job_seconds = batch_seconds(engine, costliest) / engine.lanes
    queue_size = settings.queue_size
    if queue_size is None:
        queue_size = default_queue_size(job_seconds, settings.workers, engine.lanes, settings.max_queue_wait)
    metrics = Metrics()
    scheduler = Scheduler(
        engine,
        workers=settings.workers,
        queue_size=queue_size,
        max_queue_wait=settings.max_queue_wait,
        on_batch=metrics.observe_batch,
        reserve=costliest,
        job_seconds_hint=job_seconds,
        niceness=settings.worker_niceness,
        batch_window=settings.batch_window,
    )
    metrics.watch(scheduler)
    store = LimitStore(
        settings.redis_url.get_secret_value() if settings.redis_url else None,
        fail_closed=settings.redis_fail_closed,
        timeout=settings.redis_timeout,
        sync_interval=settings.redis_sync_interval,
        max_keys=settings.max_tracked_keys,
    )
    metrics.watch_store(store)
    guard = Guard(
        settings.rule_set,
        store,
        allowlist=settings.allowlist,
        denylist=settings.denylist,
        on_decision=metrics.observe_decision,
    )
    logger.info(
        "engine %s ready: %d workers x %d lanes, queue %d",
        engine.name,
        settings.workers,
        engine.lanes,
        queue_size,
    )
    summary_log = SummaryLog(settings.refusal_log_rate)
    return Node(settings=settings, scheduler=scheduler, metrics=metrics, guard=guard, summary_log=summary_log)


def lock_buffers(engine: Engine, settings: Settings) -> None:
    """Have the engine lock its buffers in RAM; EngineUnavailable where the workers could not.

    Checked at start-up so that a node never serves with buffers it cannot lock: every worker
    holds its buffers from start-up's reserve on, which allocates (and so locks) them.
    """
    per_context = engine.lock_buffers(settings.scrypt_params)
    problem = memlock_shortfall(per_context * settings.workers)
    if problem is not None:
        raise EngineUnavailable(
            f"--lock-memory: {settings.workers} workers lock up to {per_context} bytes each; {problem}"
        )
    logger.info("hash buffers locked in memory: up to %d bytes per worker", per_context)


def default_queue_size(job_seconds: float, workers: int, lanes: int, max_queue_wait: float) -> int:
    """The memory bound on waiting jobs: as many as the workers finish within max-queue-wait at
    their start-up speed (at least one full batch each). The scheduler refuses sooner, at the
    wait it measures while serving; a longer queue would only hold jobs refused at their deadline.
    """
    return max(workers * lanes, math.ceil(workers / job_seconds * max_queue_wait))


def batch_seconds(engine: Engine, params: ScryptParams) -> float:
    """Seconds a full batch of ``params`` takes: the self-test's time where it ran these, else timed."""
    tested = engine.tested_batch_seconds.get((params.n, params.r, params.p))
    return tested if tested is not None else time_batch(engine, params)


def time_batch(engine: Engine, params: ScryptParams) -> float:
    """Seconds one context takes for a full batch of ``lanes`` hashes (its buffers reserved first)."""
    ctx = engine.open_context()
    try:
        ctx.reserve(params)
        inputs = [bytes([lane + 1]) * 32 for lane in range(ctx.lanes)]
        started = time.perf_counter()
        ctx.hash_batch(params, inputs)
        return time.perf_counter() - started
    finally:
        ctx.close()
