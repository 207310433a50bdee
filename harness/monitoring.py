"""A monitored loopback deployment: one node and a cluster (nginx, two nodes, Redis), all scraped by a
real Prometheus with the shipped configuration, and background load to drive its alerts and dashboard.

Used by ``tests/cluster/test_monitoring.py`` and ``scripts/dashboard_figure.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from types import TracebackType

import httpx

from harness.cluster import LocalCluster
from harness.prometheus import LocalPrometheus
from scrypt_helper.bench.load import Reply, closed_loop, hash_requests
from scrypt_helper.bench.local_servers import LocalServer, free_port
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams

# 16 MiB a hash: dear enough that one worker is easy to overload, cheap enough for a test machine.
PARAMS = ScryptParams(salt=b"scrypt-helper-monitoring", n=16384, r=8, p=1, buflen=32)
# The cluster refuses a client address past 5 hashes a minute (the dashboard's rate-limit panel);
# clients with the API key have a limit of their own that they stay within.
API_KEY = "monitoring-key-0123456789"
KEY_HEADERS = {"X-API-Key": API_KEY}
RULES = "scrypt : ip : 5 : 60s : 60s : block; scrypt : api_key : 1000000 : 60s : 60s : block"
LIMITED_CLIENT = "127.0.0.79"


class Load:
    """``clients`` loops POSTing hashes to ``url`` in a background thread until ``stop``.

    A client refused with 503 waits ``pause`` seconds before its next request, as a client honouring
    ``Retry-After`` would (shortened): it keeps the node overloaded without spinning on refusals.
    """

    def __init__(
        self,
        url: str,
        *,
        clients: int,
        pause: float = 0.1,
        local_address: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_requests: int = 20_000,
    ) -> None:
        self.url = url
        self.clients = clients
        self.pause = pause
        self.local_address = local_address
        self.headers = dict(headers or {})
        self.budget = max_requests
        self.statuses: Counter[int | None] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def _record(self, reply: Reply | None, sent_at: float, replied_at: float) -> None:
        self.statuses[reply.status if reply else None] += 1

    def _pause(self, reply: Reply | None) -> float:
        return 0.0 if reply is not None and reply.status == 200 else self.pause

    async def _run(self) -> None:
        target = httpx.URL(self.url)
        requests = hash_requests(target.host, target.port or 80, PARAMS)
        requests = dataclasses.replace(requests, headers=tuple(self.headers.items()))
        await closed_loop(
            requests,
            connections=self.clients,
            total=self.budget,
            until=self._stop.is_set,
            on_reply=self._record,
            pause=self._pause,
            local_address=self.local_address,
            timeout=20,
        )

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> Counter[int | None]:
        """Stop, wait for the requests in flight, and return the count of each status (None: failed)."""
        self._stop.set()
        self._thread.join(30)
        return self.statuses

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MonitoredDeployment:
    """``node``: one node (one worker, a queue of 10, /metrics on its metrics port); ``cluster``: nginx
    over two nodes sharing Redis with ``RULES``; ``prometheus`` scraping the three every ``interval``
    seconds, the shipped rules' durations divided by ``rule_factor``.
    """

    def __init__(self, *, interval: float = 1.0, rule_factor: float = 60.0) -> None:
        self.interval = interval
        self.rule_factor = rule_factor
        self._stack = ExitStack()
        self.metrics_port = free_port()
        self.node = LocalServer(
            engine="libsodium",
            workers=1,
            processes=1,
            queue_size=10,
            # The queue's size, not the wait it foresees, is what refuses: the queue stays full.
            max_queue_wait=10.0,
            drain_seconds=0,
            rules="",
            metrics_port=self.metrics_port,
            allowed_params=allowed_params_json(PARAMS),
        )
        self.cluster = LocalCluster(
            2,
            engine="libsodium",
            workers=1,
            queue_size=16,
            drain_seconds=0,
            allowed_params=allowed_params_json(PARAMS),
            rules=RULES,
            api_keys=f"monitoring:{API_KEY}",
        )
        self.prometheus: LocalPrometheus | None = None

    def targets(self) -> Mapping[str, list[str]]:
        """Prometheus targets by group: the node's metrics port, each cluster node's service port."""
        return {
            "node": [f"127.0.0.1:{self.metrics_port}"],
            "cluster": [f"127.0.0.1:{port}" for port in self.cluster.ports],
        }

    def start(self) -> MonitoredDeployment:
        try:
            # Prometheus first: it takes a few seconds to pass its discovered targets on to scraping,
            # which overlap with the nodes' start-up.
            self.prometheus = self._stack.enter_context(
                LocalPrometheus(self.targets(), interval=self.interval, rule_factor=self.rule_factor)
            )
            with ThreadPoolExecutor(2) as pool:
                started = [pool.submit(self._stack.enter_context, s) for s in (self.node, self.cluster)]
            for future in started:
                future.result()
            self.prometheus.wait_for(self.every_target_up, timeout=20)
            # Scrapes before the nodes answered fired the down alerts: start from a clean slate.
            self.prometheus.wait_for(lambda: not self.down_alerts(), timeout=20)
        except BaseException:
            self._stack.close()
            raise
        return self

    def every_target_up(self) -> bool:
        assert self.prometheus is not None
        up = self.prometheus.query('up{job="scrypt-helper"}')
        return len(up) == 3 and all(sample["value"][1] == "1" for sample in up)

    def down_alerts(self) -> list[str]:
        assert self.prometheus is not None
        names = ("ScryptHelperNodeDown", "ScryptHelperAllNodesDown")
        active = (a["labels"]["alertname"] for a in self.prometheus.alerts())
        return [name for name in active if name in names]

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> MonitoredDeployment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
