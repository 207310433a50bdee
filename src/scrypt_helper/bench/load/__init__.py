"""The one load generator of the benchmarks, the harness and the tests: HTTP/1.1 keep-alive requests
made by a ``Requests`` value, sent in a closed loop (each client waits for its reply) or an open loop
(arrivals on a schedule, whatever the replies do), in this event loop or from a process of its own.
``wrk`` and Locust stay beside it, for rates beyond Python and for the release's load test.
"""

from scrypt_helper.bench.load.closed import ClosedLoop, ClosedLoopResult, closed_loop, retry_after
from scrypt_helper.bench.load.http1 import Reply, ask, connect, read_reply, request_bytes
from scrypt_helper.bench.load.open import LATE_MS, OpenLoop, OpenLoopResult, Schedule, run_open_loop
from scrypt_helper.bench.load.requests import Requests, get, hash_requests, random_ipv6

__all__ = [
    "LATE_MS",
    "ClosedLoop",
    "ClosedLoopResult",
    "OpenLoop",
    "OpenLoopResult",
    "Reply",
    "Requests",
    "Schedule",
    "ask",
    "closed_loop",
    "connect",
    "get",
    "hash_requests",
    "random_ipv6",
    "read_reply",
    "request_bytes",
    "retry_after",
    "run_open_loop",
]
