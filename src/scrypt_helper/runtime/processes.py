"""How many HTTP front processes a node runs, and each one's share of the node's settings.

Each front process has its own event loop, scheduler and limit store. What the node promises
stays node-wide: its totals (workers, connections, queue, tracked keys) are split evenly, and a
node whose promises a process could not keep alone runs in one process (``one_process_reason``).
"""

from __future__ import annotations

from dataclasses import dataclass

from scrypt_helper.core.config import Settings
from scrypt_helper.runtime.cpus import usable_cpus


@dataclass(frozen=True)
class ProcessPlan:
    """The front processes' settings, one each; ``fallback`` says why the node keeps to one."""

    shares: tuple[Settings, ...]
    fallback: str | None = None

    @property
    def processes(self) -> int:
        return len(self.shares)


def max_connections_per_client(settings: Settings) -> int | None:
    """The per-client connection cap, or None behind trusted proxies (there the peer is the proxy)."""
    proxies = settings.trusted_proxies
    return None if proxies.hops or proxies.networks else settings.max_connections_per_client


def one_process_reason(settings: Settings) -> str | None:
    """Why this node must run in one process to keep its promises, or None when several may share it."""
    if settings.rule_set and settings.redis_url is None:
        return (
            "rate-limit rules without --redis-url: each process would keep its own counters and bans, "
            "so a client would get the limits once per process"
        )
    if max_connections_per_client(settings) is not None:
        return (
            "--max-connections-per-client applies (no --trusted-proxies): a client's connections "
            "would be counted once per process"
        )
    return None


def plan_processes(settings: Settings, cpus: int | None = None) -> ProcessPlan:
    """Decide the front processes and split the node's totals between them.

    Default: one process per usable CPU (at most one per worker). ValueError when ``--processes``
    asks for more processes than there are workers: each process needs one of its own.
    """
    asked = settings.processes
    if asked is None:
        asked = min(usable_cpus() if cpus is None else cpus, settings.workers)
    reason = one_process_reason(settings) if asked > 1 else None
    count = 1 if reason else asked
    if count > settings.workers:
        raise ValueError(
            f"--processes {count} needs at least {count} --workers (one per process), "
            f"but the node has {settings.workers}"
        )
    shares = tuple(share(settings, count, index) for index in range(count))
    return ProcessPlan(shares, reason)


def share(settings: Settings, processes: int, index: int) -> Settings:
    """Process ``index``'s settings: an even share of each node-wide total (the first ones get
    the workers left over), and ``runtime.processes`` set to the node's count."""
    workers = settings.workers // processes + (index < settings.workers % processes)
    queue_size = None if settings.queue_size is None else settings.queue_size // processes
    return settings.model_copy(
        update={
            "processes": processes,
            "workers": workers,
            "queue_size": queue_size,
            "max_connections": max(1, settings.max_connections // processes),
            "max_tracked_keys": max(1, settings.max_tracked_keys // processes),
        }
    )
