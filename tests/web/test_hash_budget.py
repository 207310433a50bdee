"""The ``scrypt`` budget in-process: only hashes computed, or refused by a rule, count against it.

The engine is held at its gate to fill the worker, so the scheduler refuses the next requests
(queue full, deadline passed) with 503, as it does under overload.
"""

from __future__ import annotations

import asyncio

import httpx

from scrypt_helper_client import request_body
from tests.conftest import SMALL, assert_error

RULES = "scrypt : ip : 2 : 60s : 60s : block"


async def scrypt(app) -> httpx.Response:
    return await app.post("/", json=request_body(SMALL, b"\x01"))


async def hold_the_worker(app, engine) -> asyncio.Future[httpx.Response]:
    """One request computing at the closed gate, so the only worker is busy."""
    engine.gate.clear()
    held = asyncio.ensure_future(scrypt(app))
    assert await asyncio.to_thread(engine.started.acquire, True, 5)
    return held


async def release_the_worker(app, engine, held: asyncio.Future[httpx.Response]) -> None:
    """Open the gate; return once the held request is answered and the worker is idle again."""
    engine.gate.set()
    assert (await held).status_code == 200
    while app.node.scheduler.in_flight:
        await asyncio.sleep(0.01)


async def rejections(app, reason: str) -> float:
    text = (await app.get("/metrics")).text
    line = f'scrypt_helper_rejections_total{{reason="{reason}"}} '
    return next((float(row.removeprefix(line)) for row in text.splitlines() if row.startswith(line)), 0.0)


async def test_hashes_refused_for_a_full_queue_cost_no_budget(make_app, engine):
    app = await make_app(rules=RULES, queue_size=0)
    held = await hold_the_worker(app, engine)
    for _ in range(5):
        assert_error(await scrypt(app), 503, 201)
    assert await rejections(app, "queue_full") == 5
    await release_the_worker(app, engine, held)
    assert (await scrypt(app)).status_code == 200  # the second hash of two
    assert_error(await scrypt(app), 429, 114)
    assert engine.hashed == 2


async def test_hashes_that_waited_past_the_deadline_cost_no_budget(make_app, engine):
    app = await make_app(rules=RULES, queue_size=4, max_queue_wait=0.1)
    held = await hold_the_worker(app, engine)
    for _ in range(3):
        assert_error(await scrypt(app), 503, 201)
    assert await rejections(app, "deadline") == 3
    await release_the_worker(app, engine, held)
    assert (await scrypt(app)).status_code == 200
    assert_error(await scrypt(app), 429, 114)
    assert engine.hashed == 2


async def test_hashes_refused_while_draining_cost_no_budget(make_app, engine):
    app = await make_app(rules="scrypt : ip : 1 : 60s : 60s : block")
    app.node.scheduler.begin_drain()
    for _ in range(3):
        assert_error(await scrypt(app), 503, 201)
    # Had the first counted, the budget of one would be spent and the second a 429.
    assert await rejections(app, "draining") == 3
    assert engine.hashed == 0


async def test_a_hash_the_engine_failed_costs_no_budget(make_app, engine):
    app = await make_app(rules="scrypt : ip : 1 : 60s : 60s : block")
    engine.fault = RuntimeError("engine fault")
    for _ in range(3):
        assert_error(await scrypt(app), 500, 999)
    engine.fault = None
    assert (await scrypt(app)).status_code == 200
    assert_error(await scrypt(app), 429, 114)


async def test_parallel_requests_cannot_overrun_the_budget(make_app, engine):
    """Hashes admitted and not yet done count too: a burst gets no more than the rule allows."""
    app = await make_app(rules=RULES, queue_size=8)
    scheduler = app.node.scheduler
    held = await hold_the_worker(app, engine)
    queued = asyncio.ensure_future(scrypt(app))
    while scheduler.depth < 1:
        await asyncio.sleep(0.01)
    for _ in range(3):
        assert_error(await scrypt(app), 429, 114)
    engine.gate.set()
    assert [(await held).status_code, (await queued).status_code] == [200, 200]
    assert engine.hashed == 2
    assert app.node.guard._in_flight == {}
