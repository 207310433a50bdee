"""The app in-process: a real node (scheduler, guard, metrics) on an engine the test controls.

No server process and no socket: httpx's ASGI transport drives the app, inside its lifespan.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from scrypt_helper.core.config import Settings
from scrypt_helper.core.node import Node, build_node
from scrypt_helper.engines.base import Engine, HashContext, ScryptParams
from scrypt_helper.http.app import create_app
from tests.conftest import SMALL, allowed_json

PEER = ("127.0.0.1", 50000)


class ControlledEngine(Engine):
    """hashlib's scrypt, which a test can hold at a gate, make fail, and count."""

    name = "controlled"
    lanes = 2

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fault: Exception | None = None
        self.hashed = 0
        self.started = threading.Semaphore(0)

    def open_context(self) -> HashContext:
        return _ControlledContext(self)

    def forget_start_up(self) -> None:
        """Forget the batch a node times at start-up, so tests count only what requests caused."""
        self.hashed = 0
        self.started = threading.Semaphore(0)


class _ControlledContext(HashContext):
    def __init__(self, engine: ControlledEngine) -> None:
        self.engine = engine
        self.lanes = engine.lanes

    def hash_batch(self, params: ScryptParams, inputs: Sequence[bytes]) -> list[bytes]:
        self.engine.started.release()
        if not self.engine.gate.wait(60):  # generous: a busy machine is slow, not stuck
            raise TimeoutError("the test never opened the gate")
        if self.engine.fault is not None:
            raise self.engine.fault
        self.engine.hashed += len(inputs)
        return [reference(params, data) for data in inputs]


def reference(params: ScryptParams, data: bytes) -> bytes:
    return hashlib.scrypt(data, salt=params.salt, n=params.n, r=params.r, p=params.p, dklen=params.buflen)


@pytest.fixture
def engine() -> ControlledEngine:
    return ControlledEngine()


class AppClient(httpx.AsyncClient):
    """An httpx client bound to one in-process app, with that app's node at hand."""

    def __init__(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app, client=PEER, raise_app_exceptions=False)
        super().__init__(transport=transport, base_url="http://testserver")
        self.app = app

    @property
    def node(self) -> Node:
        node: Node = self.app.state.node
        return node


AppFactory = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def make_app(engine: ControlledEngine) -> AsyncIterator[AppFactory]:
    """Start apps with these settings (no rate-limit rules and the small parameter set by default)."""
    async with AsyncExitStack() as stack:

        async def start(**settings: object) -> AppClient:
            defaults: dict[str, object] = {
                "rules": "",
                "allowed_params": allowed_json(SMALL),
                "workers": 1,
                "queue_size": 4,
            }
            app = create_app(build_node(Settings(**{**defaults, **settings}), engine=engine))
            engine.forget_start_up()
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(AppClient(app))

        yield start


@pytest.fixture
async def app(make_app: AppFactory) -> AppClient:
    return await make_app()
