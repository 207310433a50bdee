"""Run a node on uvicorn: its app (and private metrics port), per-connection limits, a graceful drain.

A node of one front process serves in this process; one of several runs each in a process of its
own under ``runtime.supervisor``, on sockets the parent bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import time
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any

import uvicorn
import uvloop

from scrypt_helper.core.config import Settings
from scrypt_helper.core.node import Node, build_node
from scrypt_helper.core.secret_memory import forbid_core_dumps
from scrypt_helper.http.app import create_app, create_metrics_app
from scrypt_helper.http.edge import EdgeRefusals
from scrypt_helper.http.protocol import ConnectionLimits, protocol_factory
from scrypt_helper.http.protocol_admission import EarlyAdmission
from scrypt_helper.observability.error_reporting import configure_error_reporting
from scrypt_helper.observability.log import companion_server, configure_logging
from scrypt_helper.observability.metrics import SAMPLE_SECONDS, Metrics
from scrypt_helper.runtime.processes import max_connections_per_client, plan_processes
from scrypt_helper.runtime.supervisor import STOP, Listeners, supervise

logger = logging.getLogger("scrypt_helper.server")


class DrainingServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT drains before stopping.

    Draining turns ``__lbheartbeat__`` to 503 and keeps serving for ``drain_seconds`` so
    load balancers stop routing here; then uvicorn stops accepting connections and waits
    for in-flight requests, and the app's lifespan finishes the queue. A second signal
    skips the wait. ``signals``: the ones to obey instead of SIGTERM and SIGINT (a front
    process of several obeys its parent's ``STOP`` only).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        node: Node,
        companions: list[uvicorn.Server],
        signals: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(config)
        self.node = node
        self.companions = companions
        self.signals = signals
        self.drain_deadline: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self.signals is None:
            with super().capture_signals():
                yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in self.signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

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


def uvicorn_config(
    app: object,
    settings: Settings,
    port: int,
    edge: EdgeRefusals,
    early_admission: EarlyAdmission | None = None,
) -> uvicorn.Config:
    limits = ConnectionLimits(
        settings.read_timeout,
        settings.max_connections,
        max_connections_per_client(settings),
        settings.max_header_bytes,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        # Each answer's Date comes from the app's headers (http.answers), so that none has two.
        date_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        http=protocol_factory(limits, edge, early_admission),  # type: ignore[arg-type]
        # No WebSocket routes: an upgrade would hand the socket to a protocol outside these limits.
        ws="none",
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
        lifespan="on",
    )


async def serve_node(settings: Settings, node: Node, listeners: Listeners | None = None) -> None:
    """Serve the node (and its private metrics port, if set) until a signal drains it; on the
    sockets given, or on sockets of its own bound to the configured ports."""
    companions: list[uvicorn.Server] = []
    tasks = []
    edge = EdgeRefusals(node.metrics, node.summary_log)
    if settings.metrics_port is not None:
        metrics_server = uvicorn.Server(
            uvicorn_config(create_metrics_app(node), settings, settings.metrics_port, edge)
        )
        companions.append(metrics_server)
        tasks.append(
            quietly(metrics_server._serve(None if listeners is None else _listening(listeners.metrics)))
        )
        logger.info("metrics and health checks on port %d", settings.metrics_port)
    server = DrainingServer(
        uvicorn_config(
            create_app(node),
            settings,
            settings.port,
            edge,
            EarlyAdmission(node, edge) if settings.early_admission else None,
        ),
        node,
        companions,
        signals=None if listeners is None else (STOP,),
    )
    sampler = asyncio.ensure_future(sample_metrics(node.metrics)) if node.metrics.multiprocess_dir else None
    try:
        await asyncio.gather(server.serve(None if listeners is None else [listeners.public]), *tasks)
    finally:
        if sampler is not None:
            sampler.cancel()


async def quietly(serving: Coroutine[Any, Any, None]) -> None:
    """Run a companion server without its uvicorn lifecycle lines, which repeat the node's."""
    companion_server.set(True)
    await serving


def _listening(sock: socket.socket | None) -> list[socket.socket] | None:
    return None if sock is None else [sock]


async def sample_metrics(metrics: Metrics) -> None:
    """Keep this process's gauges fresh for the scrapes that other processes of the node answer."""
    while True:
        metrics.sample()
        await asyncio.sleep(SAMPLE_SECONDS)


def run(settings: Settings) -> None:
    """The ``serve`` command: configure logging, then serve the node in this process or, when it
    runs several front processes, start and watch them (SystemExit with status 1 if one failed)."""
    configure_logging(settings.log_level)
    configure_error_reporting(settings)
    # A crash must not write hash state (or anything else in memory) out, whatever core_pattern says.
    forbid_core_dumps()
    plan = plan_processes(settings)
    if plan.fallback is not None:
        # Only worth a warning when the operator asked for several processes.
        log = logger.info if settings.processes is None else logger.warning
        log("serving in one process: %s", plan.fallback)
    if plan.processes == 1:
        serve_front_process(plan.shares[0])
        return
    status = supervise(plan, serve_front_process)
    if status:
        raise SystemExit(status)


def serve_front_process(settings: Settings, listeners: Listeners | None = None) -> None:
    """Build a node and serve it in this process: the whole node, or one of its front processes."""
    if listeners is not None:  # started by the supervisor: a fresh interpreter
        configure_logging(settings.log_level)
        configure_error_reporting(settings)
        forbid_core_dumps()
    node = build_node(settings)
    if listeners is not None:
        # Workers hold their buffers before the processes meet (faulting them in takes about a
        # second), so that every process starts listening within milliseconds of the others.
        node.scheduler.start()
        listeners.wait_for_the_others()
    # uvloop, as uvicorn itself would choose: its event loop costs a request about half as much.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_node(settings, node, listeners))
