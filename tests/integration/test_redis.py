"""Two real nodes sharing limits through a real Redis, and surviving its outage."""

from __future__ import annotations

import re
import time

from scrypt_helper.bench.tls import http_get, http_post
from scrypt_helper_client import request_body
from tests.conftest import SMALL, allowed_json, local_node


def node(redis_url: str, rules: str):
    return local_node(engine="hashlib", allowed_params=allowed_json(SMALL), redis_url=redis_url, rules=rules)


def scrypt(url: str) -> int:
    return http_post(url + "/", json=request_body(SMALL, b"\x01"), timeout=10).status_code


def redis_up(url: str) -> float:
    match = re.search(r"^scrypt_helper_redis_up (\S+)$", http_get(url + "/metrics").text, re.MULTILINE)
    assert match
    return float(match.group(1))


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.1)


def test_two_nodes_share_one_limit(redis_server):
    rules = "scrypt : ip : 4 : 60s : 60s : block"
    with node(redis_server.url, rules) as a, node(redis_server.url, rules) as b:
        assert [scrypt(a.url), scrypt(b.url), scrypt(a.url), scrypt(b.url)] == [200] * 4
        assert scrypt(a.url) == 429
        assert scrypt(b.url) == 429  # the block set through A holds on B


def test_a_ban_set_through_one_node_holds_on_the_other_from_its_next_sync(redis_server):
    rules = "request : ip : 3 : 60s : 60s : ban"
    with node(redis_server.url, rules) as a, node(redis_server.url, rules) as b:
        assert scrypt(b.url) == 200
        # a bans the address once its own three are in, or sooner where it heard of b's in time.
        statuses = [scrypt(a.url) for _ in range(4)]
        assert statuses[0] == 200
        assert statuses[-1] == 429
        wait_for(lambda: scrypt(b.url) == 429, timeout=2)
        metrics = http_get(b.url + "/metrics").text
        assert re.search(r"^scrypt_helper_limit_sync_seconds_count [1-9]", metrics, re.MULTILINE)


def test_redis_outage_leaves_both_nodes_serving_and_is_reported(redis_server):
    rules = "scrypt : ip : 1000 : 60s : 60s : block"
    with node(redis_server.url, rules) as a, node(redis_server.url, rules) as b:
        assert scrypt(a.url) == 200
        assert http_get(a.url + "/__heartbeat__").json()["checks"]["redis"] == "ok"
        redis_server.stop()
        for _ in range(5):
            assert scrypt(a.url) == 200
            assert scrypt(b.url) == 200
        heartbeat = http_get(a.url + "/__heartbeat__")
        assert heartbeat.status_code == 200  # a warning: the node still serves
        assert heartbeat.json()["checks"]["redis"] == "warning"
        assert redis_up(a.url) == 0
        assert redis_up(b.url) == 0
        redis_server.start()
        wait_for(lambda: redis_up(a.url) == 1 and redis_up(b.url) == 1)
        assert http_get(b.url + "/__heartbeat__").json()["checks"]["redis"] == "ok"
    assert "redis unreachable" in a.logs()


def test_limits_are_shared_again_after_redis_returns(redis_server):
    rules = "scrypt : ip : 2 : 60s : 60s : block"
    with node(redis_server.url, rules) as a, node(redis_server.url, rules) as b:
        redis_server.stop()
        assert scrypt(a.url) == 200  # fails over to local counters
        redis_server.start()
        wait_for(lambda: redis_up(a.url) == 1 and redis_up(b.url) == 1)  # both back on Redis
        assert [scrypt(a.url), scrypt(b.url)] == [200, 200]
        assert scrypt(b.url) == 429
        assert scrypt(a.url) == 429


def test_fail_closed_refuses_while_redis_is_down(redis_server):
    rules = "scrypt : ip : 100 : 60s : 60s : block"
    with local_node(
        engine="hashlib",
        allowed_params=allowed_json(SMALL),
        redis_url=redis_server.url,
        rules=rules,
        redis_fail_closed="true",
    ) as a:
        assert scrypt(a.url) == 200
        redis_server.stop()
        response = http_post(a.url + "/", json=request_body(SMALL, b"\x01"))
        assert response.status_code == 503
        assert response.json()["errno"] == 201
        assert "retry-after" in response.headers
