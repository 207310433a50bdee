"""Assemble a node (engine, scheduler, metrics, app) and run it on uvicorn with a graceful drain."""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import time
from types import FrameType

import uvicorn

from scrypt_helper.abuse import ApiKeys, Guard, LimitStore, TrustedProxies
from scrypt_helper.abuse.identity import parse_api_keys, parse_networks
from scrypt_helper.app import Node, create_app, create_metrics_app
from scrypt_helper.config import Settings
from scrypt_helper.engines import Engine, ScryptParams, select_engine
from scrypt_helper.http_protocol import guarded_protocol
from scrypt_helper.log import configure_logging
from scrypt_helper.metrics import Metrics
from scrypt_helper.scheduler import Scheduler

logger = logging.getLogger("scrypt_helper.server")


def build_node(settings: Settings) -> Node:
    """Choose and self-test the engine, size the queue, and wire metrics to the scheduler."""
    engine = select_engine(settings.engine)
    costliest = max(settings.scrypt_params, key=_cost)
    queue_size = settings.queue_size
    if queue_size is None:
        queue_size = default_queue_size(engine, settings.workers, settings.max_queue_wait, costliest)
    metrics = Metrics()
    scheduler = Scheduler(
        engine,
        workers=settings.workers,
        queue_size=queue_size,
        max_queue_wait=settings.max_queue_wait,
        on_batch=metrics.observe_batch,
        reserve=costliest,
    )
    metrics.watch(scheduler)
    store = LimitStore(
        settings.redis_url.get_secret_value() if settings.redis_url else None,
        fail_closed=settings.redis_fail_closed,
        timeout=settings.redis_timeout,
    )
    metrics.watch_store(store)
    guard = Guard(
        settings.rule_set,
        store,
        allowlist=parse_networks(settings.allowlist),
        denylist=parse_networks(settings.denylist),
        on_decision=metrics.observe_decision,
    )
    logger.info(
        "engine %s ready: %d workers x %d lanes, queue %d",
        engine.name,
        settings.workers,
        engine.lanes,
        queue_size,
    )
    return Node(
        settings=settings,
        scheduler=scheduler,
        metrics=metrics,
        guard=guard,
        proxies=TrustedProxies(settings.trusted_proxies),
        api_keys=ApiKeys(parse_api_keys(settings.api_keys.get_secret_value())),
    )


def default_queue_size(engine: Engine, workers: int, max_queue_wait: float, params: ScryptParams) -> int:
    """As many hashes as the workers finish within max-queue-wait, timed on one full batch.

    A longer queue would only hold requests that are answered 503 at their deadline anyway.
    """
    seconds = time_batch(engine, params)
    per_second = workers * engine.lanes / seconds
    return max(workers * engine.lanes, math.ceil(per_second * max_queue_wait))


def _cost(params: ScryptParams) -> int:
    return params.romix_bytes * params.p


def time_batch(engine: Engine, params: ScryptParams) -> float:
    """Seconds one context takes for a full batch of ``lanes`` hashes (after a warm-up)."""
    ctx = engine.open_context()
    try:
        ctx.reserve(params)
        inputs = [bytes([lane + 1]) * 32 for lane in range(ctx.lanes)]
        started = time.perf_counter()
        ctx.hash_batch(params, inputs)
        return time.perf_counter() - started
    finally:
        ctx.close()


def forbid_core_dumps() -> None:
    """A crash must not write hash state (or anything else in memory) to disk."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class DrainingServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT drains before stopping.

    Draining turns ``__lbheartbeat__`` to 503 and keeps serving for ``drain_seconds`` so
    load balancers stop routing here; then uvicorn stops accepting connections and waits
    for in-flight requests, and the app's lifespan finishes the queue. A second signal
    skips the wait.
    """

    def __init__(self, config: uvicorn.Config, node: Node, companions: list[uvicorn.Server]) -> None:
        super().__init__(config)
        self.node = node
        self.companions = companions
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is None:
            self.node.draining = True
            self.drain_deadline = time.monotonic() + self.node.settings.drain_seconds
            logger.info("draining for %.1f s before shutdown", self.node.settings.drain_seconds)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        should_exit = await super().on_tick(counter)
        if should_exit:
            for companion in self.companions:
                companion.should_exit = True
        return should_exit


def uvicorn_config(app: object, settings: Settings, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        http=guarded_protocol(settings.read_timeout, settings.max_connections),
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
        lifespan="on",
    )


async def serve_node(settings: Settings, node: Node) -> None:
    """Serve the node (and its private metrics port, if set) until a signal drains it."""
    companions: list[uvicorn.Server] = []
    tasks = []
    if settings.metrics_port is not None:
        metrics_server = uvicorn.Server(
            uvicorn_config(create_metrics_app(node), settings, settings.metrics_port)
        )
        companions.append(metrics_server)
        tasks.append(metrics_server._serve())
    server = DrainingServer(uvicorn_config(create_app(node), settings, settings.port), node, companions)
    await asyncio.gather(server.serve(), *tasks)


def run(settings: Settings) -> None:
    """The ``serve`` command: configure logging, build the node and serve it."""
    configure_logging(settings.log_level)
    forbid_core_dumps()
    node = build_node(settings)
    asyncio.run(serve_node(settings, node))
