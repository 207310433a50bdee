"""Region failover rehearsed on loopback (harness/rehearsal.py), trimmed to a few seconds of load.

Two regions, each nginx (deploy/nginx) + two nodes + its own Redis, behind HAProxy health-checking
``/__lbheartbeat__``; region a is SIGKILLed whole under load and brought back. The full rehearsal,
with figures, is ``scripts/region_failover.py``.
"""

from __future__ import annotations

import pytest

from harness.cluster import find_nginx
from harness.haproxy import HealthCheck, find_haproxy
from harness.rehearsal import Plan, Report, rehearse
from scrypt_helper.bench.local_servers import LocalRedis
from tests.conftest import SMALL

pytestmark = [
    pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(find_haproxy() is None, reason="haproxy is not installed (apt-get install haproxy)"),
    pytest.mark.skipif(
        LocalRedis().binary is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
    pytest.mark.timeout(120),
]

# The router needs 0.6-0.9 s to take a region out; three attempts back off for 0.15-0.3 s in all, so a
# caller with one URL cannot wait it out, and one with both must not need to.
CHECK = HealthCheck(inter_ms=300, fall=3, rise=2)


@pytest.fixture(scope="module")
def report() -> Report:
    plan = Plan(
        SMALL, callers=4, rate=10, steady=1.5, outage=2, after=2.5, check=CHECK, cooldown=1.0, max_attempts=3
    )
    return rehearse(plan)


def test_callers_with_one_url_per_region_lose_no_request(report):
    failover = report.groups["failover"]
    assert failover.calls >= 100
    assert failover.failed == 0
    # they did meet the dead region, and moved on within the call
    assert any(report.killed <= t < report.restarting for t in failover.failed_attempts)


def test_all_traffic_moves_to_the_surviving_region(report):
    assert report.share("a", report.began, report.killed) > 0.3  # both regions served before
    router = report.router_failover()
    assert router is not None
    assert router < 1.5  # three failed checks 300 ms apart, and the sampling
    assert report.failover() < 1.5
    assert report.share("a", report.killed + router, report.restarting) == 0.0


def test_callers_with_one_url_fail_without_client_side_failover(report):
    direct = report.groups["direct"]  # region a's own URL: fails until the region is back
    assert direct.failed > 0
    assert direct.calls > direct.failed  # it was served before the kill and after the region came back
    assert report.groups["router"].failed > 0  # the global name only: fails until the router reacts


def test_traffic_returns_to_the_region_once_it_is_back(report):
    assert report.router_back() is not None
    assert report.traffic_back() is not None
    assert report.share("a", report.ended - 1.5, report.ended) > 0.3
