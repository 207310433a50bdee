"""How many front processes a node runs, each one's share of the node's totals, and when it keeps to
one process so that its limits stay node-wide."""

from __future__ import annotations

import os
import pickle
import stat

import pytest

from scrypt_helper.core.config import Settings
from scrypt_helper.observability import metrics
from scrypt_helper.runtime.processes import plan_processes
from scrypt_helper.runtime.supervisor import metrics_directory

# What lets a node run several processes without Redis: no rules, and a trusted proxy (which
# limits connections per client in its place).
SHARABLE = {"rules": "", "trusted_proxies": "1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SCRYPT_HELPER_"):
            monkeypatch.delenv(name)


def test_each_process_gets_an_even_share_of_the_node_totals():
    settings = Settings(
        processes=2, workers=4, max_connections=1000, queue_size=9, max_tracked_keys=100, **SHARABLE
    )
    plan = plan_processes(settings)
    assert plan.processes == 2
    assert plan.fallback is None
    assert [s.workers for s in plan.shares] == [2, 2]
    assert [s.max_connections for s in plan.shares] == [500, 500]
    assert [s.queue_size for s in plan.shares] == [4, 4]
    assert [s.max_tracked_keys for s in plan.shares] == [50, 50]
    assert {s.processes for s in plan.shares} == {2}
    # Everything else is the node's.
    assert {s.port for s in plan.shares} == {settings.port}
    assert {s.trusted_proxies for s in plan.shares} == {settings.trusted_proxies}


def test_workers_left_over_go_to_the_first_processes_and_the_total_holds():
    plan = plan_processes(Settings(processes=3, workers=8, **SHARABLE))
    assert [s.workers for s in plan.shares] == [3, 3, 2]


def test_a_measured_queue_stays_measured_per_process():
    plan = plan_processes(Settings(processes=2, workers=2, **SHARABLE))
    assert [s.queue_size for s in plan.shares] == [None, None]


def test_a_process_without_a_worker_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"--processes 3 needs at least 3 --workers .* has 2"):
        plan_processes(Settings(processes=3, workers=2, **SHARABLE))


def test_rules_without_redis_keep_the_node_in_one_process():
    plan = plan_processes(
        Settings(processes=4, workers=4, rules="scrypt : ip : 3 : 60s : 60s : block", trusted_proxies="1")
    )
    assert plan.processes == 1
    assert "--redis-url" in plan.fallback
    assert plan.shares[0].workers == 4
    assert plan.shares[0].processes == 1


def test_rules_with_redis_are_node_wide_so_processes_may_share_them():
    plan = plan_processes(
        Settings(processes=2, workers=2, trusted_proxies="1", redis_url="redis://127.0.0.1:6379/0")
    )
    assert plan.processes == 2
    assert plan.shares[0].rule_set == Settings(redis_url="redis://127.0.0.1:6379/0").rule_set
    assert plan.shares[0].redis_url is not None


def test_a_per_client_connection_cap_keeps_the_node_in_one_process():
    plan = plan_processes(Settings(processes=2, workers=2, rules=""))
    assert plan.processes == 1
    assert "--max-connections-per-client" in plan.fallback


def test_no_fallback_to_report_for_a_node_of_one_process():
    assert plan_processes(Settings(processes=1, workers=2)).fallback is None


@pytest.mark.parametrize(("cpus", "workers", "expected"), [(4, 4, 4), (4, 2, 2), (1, 4, 1), (8, 8, 8)])
def test_the_default_is_one_process_per_usable_cpu_and_worker(cpus, workers, expected):
    plan = plan_processes(Settings(workers=workers, **SHARABLE), cpus=cpus)
    assert plan.processes == expected
    assert sum(s.workers for s in plan.shares) == workers


def test_the_default_keeps_one_process_where_the_node_would_fall_back():
    plan = plan_processes(Settings(workers=4), cpus=4)
    assert plan.processes == 1
    assert plan.fallback is not None


def test_a_share_crosses_to_its_process_whole():
    """Spawned processes receive their settings pickled: secrets and parsed values survive."""
    settings = Settings(
        processes=2,
        workers=2,
        trusted_proxies="10.0.0.0/8",
        redis_url="redis://:secret@127.0.0.1:6379/0",
        api_keys="ops:0123456789abcdef0123",
        rules="request : ip : 100 : 60s : 60s : block",
    )
    share = plan_processes(settings).shares[1]
    copy = pickle.loads(pickle.dumps(share))  # noqa: S301 - our own bytes, as multiprocessing does
    for name in Settings.model_fields.keys() - {"api_keys"}:
        assert getattr(copy, name) == getattr(share, name), name
    assert copy.api_keys.name_of("0123456789abcdef0123") == "ops"
    assert copy.redis_url.get_secret_value() == "redis://:secret@127.0.0.1:6379/0"
    assert copy.rule_set == share.rule_set
    assert copy.scrypt_params == share.scrypt_params
    assert copy.prefix_lengths == share.prefix_lengths


def test_the_metrics_directory_is_private_named_for_the_processes_and_removed(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROCESS_DIR_ENV, raising=False)
    with metrics_directory() as directory:
        assert os.environ[metrics.MULTIPROCESS_DIR_ENV] == directory
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        (open(os.path.join(directory, "counter_1.db"), "wb")).close()
    assert not os.path.exists(directory)
    assert metrics.MULTIPROCESS_DIR_ENV not in os.environ
