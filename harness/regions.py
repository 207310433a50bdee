"""A "region" on loopback: a ``LocalCluster`` (nginx from deploy/nginx, nodes, its own Redis) that can be
killed whole at once and brought back on the same ports. Used by ``harness/rehearsal.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import psutil

from harness.cluster import LocalCluster
from scrypt_helper.bench.local_servers import free_port


class Region:
    """``nodes`` nodes and one Redis behind nginx on a port that stays the same across ``restart``."""

    def __init__(self, name: str, nodes: int = 2, **node_flags: object) -> None:
        self.name = name
        self.port = free_port()
        self.cluster = LocalCluster(nodes, redis=True, nginx_limits={"port": self.port}, **node_flags)

    @property
    def url(self) -> str:
        """The region's own proxy (its load balancer's name, without the global layer)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Region:
        self.cluster.start()
        return self

    def pids(self) -> list[int]:
        """Every process of the region: the nodes and nginx with all their children, and Redis."""
        cluster = self.cluster
        roots = [node.process for node in cluster.nodes]
        roots += [
            cluster.nginx.process if cluster.nginx else None,
            cluster.redis.process if cluster.redis else None,
        ]
        pids = []
        for process in roots:
            if process is None or process.poll() is not None:
                continue
            pids.append(process.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                pids += [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        return pids

    def kill(self) -> None:
        """SIGKILL every process of the region in one go (nodes, nginx master and workers, Redis)."""
        for pid in self.pids():  # found first, so the kills follow each other within microseconds
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        cluster = self.cluster
        processes = [node.process for node in cluster.nodes]
        processes += [
            cluster.nginx.process if cluster.nginx else None,
            cluster.redis.process if cluster.redis else None,
        ]
        for process in processes:
            if process is not None:
                process.wait(10)

    def restart(self) -> None:
        """Bring the region back on the same ports: Redis, then the nodes, then nginx."""
        self.cluster.stop()  # everything is dead already: this removes what the dead processes left
        self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    def __enter__(self) -> Region:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_regions(regions: list[Region]) -> None:
    """Start several regions at once (each node takes a few seconds to start)."""
    with ThreadPoolExecutor(len(regions)) as pool:
        for future in [pool.submit(region.start) for region in regions]:
            future.result()
