"""Run a node on uvicorn: its app (and private metrics port), per-connection limits, a graceful drain."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from types import FrameType

import uvicorn
import uvloop

from scrypt_helper.config import Settings
from scrypt_helper.hygiene import forbid_core_dumps
from scrypt_helper.log import configure_logging
from scrypt_helper.node import Node, build_node
from scrypt_helper.web.app import create_app, create_metrics_app
from scrypt_helper.web.connection_limits import guarded_protocol
from scrypt_helper.web.door import Door

logger = logging.getLogger("scrypt_helper.server")


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


def max_connections_per_client(settings: Settings) -> int | None:
    """The per-client connection cap, or None behind trusted proxies (there the peer is the proxy)."""
    proxies = settings.trusted_proxies
    return None if proxies.hops or proxies.networks else settings.max_connections_per_client


def uvicorn_config(app: object, settings: Settings, port: int, door: Door | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        http=guarded_protocol(
            settings.read_timeout, settings.max_connections, max_connections_per_client(settings), door
        ),
        # No WebSocket routes: an upgrade would hand the socket to a protocol outside these limits.
        ws="none",
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
    public = uvicorn_config(create_app(node), settings, settings.port, Door(node))
    server = DrainingServer(public, node, companions)
    await asyncio.gather(server.serve(), *tasks)


def run(settings: Settings) -> None:
    """The ``serve`` command: configure logging, build the node and serve it."""
    configure_logging(settings.log_level)
    # A crash must not write hash state (or anything else in memory) out, whatever core_pattern says.
    forbid_core_dumps()
    node = build_node(settings)
    # uvloop, as uvicorn itself would choose: its event loop costs a request about half as much.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_node(settings, node))
