"""The open-loop generator against a real node: every scheduled arrival is sent and answered, and the
node logs each one."""

from __future__ import annotations

import time

from scrypt_helper.bench.load import Schedule, hash_requests, run_open_loop
from scrypt_helper.bench.overload import post_summaries
from tests.conftest import SMALL, allowed_json, local_node


def test_the_open_loop_sends_every_arrival_and_each_is_answered_once():
    schedule = Schedule(rate=60, seconds=1.5, seed=3)
    arrivals = len(schedule.arrivals())
    assert 60 <= arrivals <= 120  # a bounded load, whatever the seed
    with local_node(allowed_params=allowed_json(SMALL), workers=1, queue_size=100) as node:
        result = run_open_loop(hash_requests(node.host, node.port, SMALL), schedule, grace=10, warm=4)
        time.sleep(0.2)  # the node logs an answer as it sends it
        summaries = post_summaries(node.logs())
    assert (result.offered, result.sent, result.unsent, result.unanswered) == (arrivals, arrivals, 0, 0)
    assert result.statuses == {200: arrivals}
    assert sum(len(times) for times in result.latencies_ms.values()) == arrivals
    assert 4 <= result.connections <= arrivals
    assert [row["code"] for row in summaries] == [200] * arrivals
