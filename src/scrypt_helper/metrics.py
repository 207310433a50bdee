"""Every Prometheus metric the service exports, on a private registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scrypt_helper.abuse.memory import TABLES
from scrypt_helper.abuse.store import LimitStore
from scrypt_helper.scheduler import Scheduler

PREFIX = "scrypt_helper"
# Hashes take tens to hundreds of milliseconds; waits range from nothing to max-queue-wait.
HASH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16)


class Metrics:
    """The service's metrics; one instance per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request start to response, by route.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.hash_duration = Histogram(
            f"{PREFIX}_hash_duration_seconds",
            "Compute time of the batch each hash ran in.",
            buckets=HASH_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            f"{PREFIX}_queue_wait_seconds",
            "Time a hash waited in the queue before a worker took it.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Hashes computed together per engine call.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            f"{PREFIX}_rejections", "Requests refused without a hash, by reason.", ["reason"], registry=r
        )
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth", "Hashes waiting for a worker.", registry=r)
        self.in_flight = Gauge(f"{PREFIX}_in_flight", "Hashes being computed now.", registry=r)
        self.workers = Gauge(f"{PREFIX}_workers", "Live hash worker threads.", registry=r)
        self.queue_capacity = Gauge(f"{PREFIX}_queue_capacity", "Most hashes the queue holds.", registry=r)
        self.decisions = Counter(
            f"{PREFIX}_abuse_decisions",
            "Requests refused or reported by an abuse rule, by rule and policy.",
            ["rule", "policy"],
            registry=r,
        )
        self.redis_up = Gauge(
            f"{PREFIX}_redis_up", "1 while the shared Redis answers, 0 while it does not.", registry=r
        )
        self.redis_failovers = Counter(
            f"{PREFIX}_redis_failovers", "Times the node lost Redis and fell back.", registry=r
        )
        self.local_limit_keys = Gauge(
            f"{PREFIX}_local_limit_keys",
            "Keys the in-memory limit store holds, by table (window, marker, counter); each is capped.",
            ["table"],
            registry=r,
        )
        self.local_limit_evictions = Counter(
            f"{PREFIX}_local_limit_evictions",
            "Live keys the in-memory limit store forgot to stay within its cap, by table.",
            ["table"],
            registry=r,
        )
        self.engine = Info(f"{PREFIX}_engine", "The scrypt engine in use.", registry=r)

    def watch(self, scheduler: Scheduler) -> None:
        """Read the scheduler's gauges at scrape time and record its batches."""
        self.queue_depth.set_function(lambda: scheduler.depth)
        self.in_flight.set_function(lambda: scheduler.in_flight)
        self.workers.set_function(lambda: scheduler.alive_workers)
        self.queue_capacity.set(scheduler.queue_size)
        self.engine.info({"name": scheduler.engine.name, "lanes": str(scheduler.engine.lanes)})

    def watch_store(self, store: LimitStore) -> None:
        """Follow the in-memory store's size and evictions, and its Redis state when configured."""
        local = store.local
        for table in TABLES:
            self.local_limit_keys.labels(table).set_function(lambda table=table: local.sizes()[table])
        evicted = {table: self.local_limit_evictions.labels(table) for table in TABLES}
        local.on_evict = lambda table: evicted[table].inc()
        if store.redis is None:
            return
        self.redis_up.set(1)

        def changed(up: bool) -> None:
            self.redis_up.set(int(up))
            if not up:
                self.redis_failovers.inc()

        store.on_change = changed

    def observe_decision(self, rule: str, policy: str) -> None:
        self.decisions.labels(rule, policy).inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
