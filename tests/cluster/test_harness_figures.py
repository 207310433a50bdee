"""The harness's measurements of deployed shapes run once, on tiny parameters, to their reports:
the flood through the shipped nginx, a client's budget across regions, and the service against the
2013 helper's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scrypt_helper.bench.local_servers import LocalRedis
from tests.measuring import run_measurement

needs_redis = pytest.mark.skipif(LocalRedis().binary is None, reason="redis-server is not installed")


def run(module: str, out: Path, *flags: str) -> dict:
    run_measurement(module, "--tiny", "--engine", "hashlib", "--seconds", "0.5", *flags, out=out)
    (report,) = out.glob("*.json")
    return json.loads(report.read_text())


@needs_redis
def test_the_flood_through_nginx_reports_the_share_and_every_parts_cores(tmp_path):
    report = run("harness.flood_through_nginx", tmp_path)
    assert report["alone"]["ok"] > 0
    assert report["flood"]["statuses"].get("400", 0) > 0
    assert set(report["cores_during_flood"]) == {"nginx", "nodes", "node_loops", "redis"}
    assert report["nginx_no_live_upstreams"] == 0


@needs_redis
def test_a_hopping_client_gets_one_budget_in_all_only_where_it_is_divided_or_shared(tmp_path):
    report = run("harness.region_budgets", tmp_path, "--delay-ms", "25")
    assert report["budgets"] == {
        "whole": {"hopping": 16, "staying": 8},
        "divided": {"hopping": 8, "staying": 4},
    }
    shared = report["shared_store"]
    assert shared["hopping"] == 8
    assert shared["latency"]["far"]["p50_ms"] > shared["latency"]["near"]["p50_ms"]


def test_the_service_and_the_2013_helper_each_answer_the_same_clients_round_by_round(tmp_path):
    report = run("harness.helper_2013", tmp_path, "--rounds", "2", "--clients", "8")
    assert all(rate > 0 for rates in report["rates"].values() for rate in rates)
    assert [len(rates) for rates in report["rates"].values()] == [2, 2]
    mine, theirs = report["rates"]["scrypt-helper"], report["rates"]["2013 helper"]
    assert report["ratios"] == pytest.approx([a / b for a, b in zip(mine, theirs, strict=True)])
