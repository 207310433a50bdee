"""The metrics add up across front processes: every gauge has a node-wide multiprocess mode, nothing
needs a callback or an Info, and one process exports the same series as before."""

from __future__ import annotations

import os
import re

from prometheus_client import Gauge
from prometheus_client.metrics import MetricWrapperBase

from scrypt_helper.abuse import LimitStore
from scrypt_helper.core.scheduler import Scheduler
from scrypt_helper.engines.hashlib_engine import HashlibEngine
from scrypt_helper.observability.metrics import Metrics

# One series per node, whichever process answers: a total over the live processes, or for a
# state that is bad when bad anywhere, the worst. "all" would add a pid label to every series.
NODE_WIDE = {"livesum", "livemin", "livemax", "max", "min", "sum"}


def declared(metrics: Metrics) -> dict[str, MetricWrapperBase]:
    return {name: m for name, m in vars(metrics).items() if isinstance(m, MetricWrapperBase)}


def test_every_gauge_adds_up_to_one_node_series():
    gauges = {name: m for name, m in declared(Metrics()).items() if isinstance(m, Gauge)}
    assert {"queue_depth", "in_flight", "workers", "queue_capacity", "redis_up", "engine_info"} <= set(gauges)
    for name, gauge in gauges.items():
        assert gauge._multiprocess_mode in NODE_WIDE, name


def test_only_kinds_that_multiprocess_mode_supports():
    for family in Metrics().registry.collect():
        assert family.type in {"counter", "gauge", "histogram"}, family.name


def test_gauges_follow_the_scheduler_and_store_at_each_scrape():
    metrics = Metrics()
    scheduler = Scheduler(HashlibEngine(), workers=2, queue_size=7, max_queue_wait=1.0)
    metrics.watch(scheduler)
    metrics.watch_store(LimitStore(None))
    text = metrics.render()[0].decode()
    assert 'scrypt_helper_engine_info{lanes="1",name="hashlib"} 1.0' in text
    assert "scrypt_helper_queue_capacity 7.0" in text
    assert "scrypt_helper_workers 0.0" in text
    assert 'scrypt_helper_local_limit_keys{table="window"} 0.0' in text
    scheduler.start()
    try:
        assert "scrypt_helper_workers 2.0" in metrics.render()[0].decode()
    finally:
        scheduler.close(5)


def test_each_process_exports_its_memory_cpu_and_descriptors_under_its_pid():
    metrics = Metrics()
    text = metrics.render()[0].decode()
    pid = os.getpid()
    for name in ("resident_memory_bytes", "cpu_seconds", "open_fds"):
        match = re.search(rf'^scrypt_helper_process_{name}{{pid="{pid}"}} (\S+)$', text, re.MULTILINE)
        assert match, name
        assert float(match.group(1)) > 0, name
