"""SIGTERM drains: __lbheartbeat__ turns 503, every request in flight is answered, exit 0."""

from __future__ import annotations

import httpx
import pytest

from scrypt_helper.bench.tls import http_get
from scrypt_helper.engines.vectors import PICL_PARAMS
from tests.conftest import allowed_json, local_node
from tests.drain import assert_sigterm_drains


async def test_sigterm_answers_every_request_in_flight_then_exits_cleanly():
    node = local_node(
        engine="libsodium",
        workers=1,
        queue_size=16,
        max_queue_wait=30,
        drain_seconds=1.0,
        allowed_params=allowed_json(PICL_PARAMS),
    ).start()
    try:
        await assert_sigterm_drains(node, f"{node.url}/__heartbeat__")
        with pytest.raises(httpx.ConnectError):
            http_get(node.url + "/__lbheartbeat__")
    finally:
        node.stop()
