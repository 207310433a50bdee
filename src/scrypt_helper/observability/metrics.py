"""Every Prometheus metric the service exports, on a private registry.

A node of several front processes runs prometheus_client's multiprocess mode: each process
writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set before prometheus_client is
imported), and any process's ``/metrics`` adds up every process's files. That mode has no
callback gauges and no ``Info``, so the gauges here are set from the scheduler and the store
(``sample``: at each scrape, and every ``SAMPLE_SECONDS`` in each process), each with the mode
that makes the node's figure (``livesum``: the node's total over live processes), and the engine
is a gauge of value 1 under the name an ``Info`` would export. One process exports the same
series, from its own registry.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from scrypt_helper.abuse.bounded_windows import TABLES
from scrypt_helper.abuse.store import LimitStore
from scrypt_helper.core.scheduler import Scheduler
from scrypt_helper.observability import process_usage

PREFIX = "scrypt_helper"
# Hashes take tens to hundreds of milliseconds; waits range from nothing to max-queue-wait.
HASH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16)
# Where prometheus_client's multiprocess mode keeps each process's values.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Methods counted under their own name; any other is counted as OTHER (labels stay bounded).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"})
# How often each front process writes its gauges for the others' scrapes: their figures are at
# most this old, while the answering process's own are read at the scrape.
SAMPLE_SECONDS = 1.0


class Metrics:
    """The service's metrics; one instance per app (per process)."""

    def __init__(self) -> None:
        # prometheus_client chose its value store from the same variable when it was imported.
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_ENV) or None
        self._scheduler: Scheduler | None = None
        self._store: LimitStore | None = None
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
        self._rejections_by_reason: dict[tuple[str, ...], Any] = {}  # a handful of reasons
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Hashes waiting for a worker.", registry=r, multiprocess_mode="livesum"
        )
        self.in_flight = Gauge(
            f"{PREFIX}_in_flight", "Hashes being computed now.", registry=r, multiprocess_mode="livesum"
        )
        self.workers = Gauge(
            f"{PREFIX}_workers", "Live hash worker threads.", registry=r, multiprocess_mode="livesum"
        )
        self.queue_capacity = Gauge(
            f"{PREFIX}_queue_capacity",
            "Most hashes the queue holds.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.decisions = Counter(
            f"{PREFIX}_abuse_decisions",
            "Requests refused or reported by an abuse rule, by rule and policy.",
            ["rule", "policy"],
            registry=r,
        )
        self._decisions_by_rule: dict[tuple[str, ...], Any] = {}  # one per rule and policy in force
        # 0 as soon as one process has lost Redis.
        self.redis_up = Gauge(
            f"{PREFIX}_redis_up",
            "1 while the shared Redis answers, 0 while it does not.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.redis_failovers = Counter(
            f"{PREFIX}_redis_failovers", "Times the node lost Redis and fell back.", registry=r
        )
        self.limit_syncs = Histogram(
            f"{PREFIX}_limit_sync_seconds",
            "Seconds each trade of request counts, bans and blocks with Redis took.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.local_limit_keys = Gauge(
            f"{PREFIX}_local_limit_keys",
            "Keys the in-memory limit store holds, by table (window, marker, counter); each is capped.",
            ["table"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.local_limit_evictions = Counter(
            f"{PREFIX}_local_limit_evictions",
            "Live keys the in-memory limit store forgot to stay within its cap, by table.",
            ["table"],
            registry=r,
        )
        # What an Info named "engine" exported, as a gauge: multiprocess mode has no Info.
        self.engine_info = Gauge(
            f"{PREFIX}_engine_info",
            "The scrypt engine in use.",
            ["name", "lanes"],
            registry=r,
            multiprocess_mode="max",
        )

        # prometheus_client's process collector reads only its own process, and multiprocess mode
        # drops it: each front process sets its own figures, under its pid (livesum: one series a
        # live process, a dead one's gone).
        self.process_resident_memory = Gauge(
            f"{PREFIX}_process_resident_memory_bytes",
            "Resident memory of each front process.",
            ["pid"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.process_cpu_seconds = Gauge(
            f"{PREFIX}_process_cpu_seconds",
            "CPU time (user and system) each front process has used since it started.",
            ["pid"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.process_open_fds = Gauge(
            f"{PREFIX}_process_open_fds",
            "Open file descriptors (connections among them) of each front process.",
            ["pid"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pid = str(os.getpid())

    def watch(self, scheduler: Scheduler) -> None:
        """Follow the scheduler's gauges (see ``sample``) and record its engine and queue capacity."""
        self._scheduler = scheduler
        self.queue_capacity.set(scheduler.queue_size)
        self.engine_info.labels(scheduler.engine.name, str(scheduler.engine.lanes)).set(1)
        self.sample()

    def watch_store(self, store: LimitStore) -> None:
        """Follow the in-memory store's size and evictions, and its Redis state when configured."""
        self._store = store
        local = store.local
        evicted = {table: self.local_limit_evictions.labels(table) for table in TABLES}
        local.on_evict = lambda table: evicted[table].inc()
        self.sample()
        if store.redis is None:
            return
        self.redis_up.set(1)

        def changed(up: bool) -> None:
            self.redis_up.set(int(up))
            if not up:
                self.redis_failovers.inc()

        store.on_change = changed
        store.on_sync = self.limit_syncs.observe

    def count_rejection(self, reason: str) -> None:
        """One request refused without a hash; each reason's series is looked up once (hot path)."""
        _series(self._rejections_by_reason, self.rejections, reason).inc()

    def observe_decision(self, rule: str, policy: str) -> None:
        """One abuse decision; each rule's series is looked up once (a flood's refusals each make one)."""
        _series(self._decisions_by_rule, self.decisions, rule, policy).inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)

    def sample(self) -> None:
        """Set the gauges that follow the scheduler and the in-memory store from their state now."""
        scheduler = self._scheduler
        if scheduler is not None:
            self.queue_depth.set(scheduler.depth)
            self.in_flight.set(scheduler.in_flight)
            self.workers.set(scheduler.alive_workers)
        if self._store is not None:
            for table, size in self._store.local.sizes().items():
                self.local_limit_keys.labels(table).set(size)
        self.sample_process()

    def sample_process(self) -> None:
        """This process's resident memory, CPU time and open descriptors."""
        pid = self._pid
        self.process_cpu_seconds.labels(pid).set(process_usage.cpu_seconds())
        with contextlib.suppress(psutil.Error):
            self.process_resident_memory.labels(pid).set(process_usage.resident_bytes())
            self.process_open_fds.labels(pid).set(process_usage.open_fds())

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type: the whole node's, in every process."""
        self.sample()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestSeries:
    """``Metrics.requests`` and ``request_duration``, each label set looked up once (they are bounded)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        series = self._cache.get(key)
        if series is None:
            series = (
                self.metrics.requests.labels(route, method, str(status)),
                self.metrics.request_duration.labels(route),
            )
            self._cache[key] = series
        series[0].inc()
        series[1].observe(seconds)


def forget_process(pid: int, directory: str) -> None:
    """Drop an exited process's live gauges from the node's figures (its counters stay counted)."""
    mark_process_dead(pid, directory)


def _series(cache: dict[tuple[str, ...], Any], metric: Counter, *labels: str) -> Any:
    """``metric``'s series for ``labels``, looked up once per label set: a label lookup takes a
    lock and builds a key, and the refusals that count here come by the thousand under a flood."""
    series = cache.get(labels)
    if series is None:
        series = cache[labels] = metric.labels(*labels)
    return series
