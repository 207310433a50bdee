"""Dockerflow endpoints: load-balancer heartbeat, full heartbeat, and version."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

from dockerflow import checks
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from scrypt_helper import __version__
from scrypt_helper.abuse import LimitStore
from scrypt_helper.core.scheduler import Scheduler
from scrypt_helper.core.secret_memory import dumpable
from scrypt_helper.http.dependencies import NodeDep

SOURCE_URL = "https://github.com/mozilla-services/scrypt-helper"
# Above this share of the queue in use, the heartbeat warns (it still answers 200).
QUEUE_WARNING_RATIO = 0.9

router = APIRouter(tags=["Dockerflow"])


@router.get("/__lbheartbeat__")
@router.head("/__lbheartbeat__", include_in_schema=False)
async def lbheartbeat(node: NodeDep) -> Response:
    """200 while the node takes traffic; 503 once it drains, so load balancers move away."""
    if node.draining:
        return JSONResponse({"status": "draining"}, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok"})


@router.get("/__heartbeat__")
@router.head("/__heartbeat__", include_in_schema=False)
async def heartbeat(node: NodeDep) -> Response:
    """Dockerflow checks of this node (500 on any error), with its engine and queue details.

    In a node of several front processes the checks and details are the answering process's:
    its ``pid``, and its share of the workers and queue; ``runtime.processes`` is the node's count.
    """
    scheduler = node.scheduler
    probes = [("workers", partial(check_workers, scheduler)), ("queue", partial(check_queue, scheduler))]
    if node.guard.store.redis is not None:
        probes.append(("redis", partial(check_redis, node.guard.store)))
    results = await checks.run_checks_async(probes)
    details: dict[str, Any] = dict(results.details)
    details["node"] = {
        "engine": scheduler.engine.name,
        "lanes": scheduler.engine.lanes,
        # What the engine does with hash state, and whether the kernel would dump this process:
        # read now, so that they say what is true, not what was configured.
        "wipes_hash_state": scheduler.engine.wipes_state,
        "memory_locked": scheduler.engine.locks_memory,
        "dumpable": dumpable(),
        "workers": scheduler.workers,
        "queue_size": scheduler.queue_size,
        "queue_depth": scheduler.depth,
        "in_flight": scheduler.in_flight,
        "draining": node.draining,
        "pid": os.getpid(),
        "processes": node.settings.processes or 1,
    }
    payload = {"status": checks.level_to_text(results.level), "checks": results.statuses, "details": details}
    return JSONResponse(payload, status_code=200 if results.level < checks.ERROR else 500)


def check_workers(scheduler: Scheduler) -> list[checks.CheckMessage]:
    alive = scheduler.alive_workers
    if alive < scheduler.workers and not scheduler.draining:
        return [
            checks.Error(
                f"{scheduler.workers - alive} of {scheduler.workers} hash workers died", id="workers.dead"
            )
        ]
    return []


def check_queue(scheduler: Scheduler) -> list[checks.CheckMessage]:
    if scheduler.queue_size and scheduler.depth >= QUEUE_WARNING_RATIO * scheduler.queue_size:
        return [checks.Warning(f"queue {scheduler.depth}/{scheduler.queue_size} full", id="queue.saturated")]
    return []


async def check_redis(store: LimitStore) -> list[checks.CheckMessage]:
    """A Redis outage is a warning: the node keeps serving on local limits (or refuses, if fail-closed)."""
    if await store.check():
        return []
    mode = "refusing requests" if store.fail_closed else "serving with local limits"
    return [checks.Warning(f"redis unreachable; {mode}", id="redis.down")]


@router.get("/__version__")
async def version(node: NodeDep) -> Response:
    """The deployed build's version.json, or what the installed package knows of itself."""
    return JSONResponse(load_version(Path(node.settings.version_file)))


def load_version(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"source": SOURCE_URL, "version": __version__, "commit": "unknown", "build": "unknown"}
