"""One description of the local cluster: docker-compose.yml, which the loopback harness follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cluster import LocalCluster
from harness.topology import COMPOSE, PLACED_LOCALLY, SIZED_PER_MACHINE, compose_topology
from scrypt_helper.core.config import Settings

SETTINGS = {name.upper() for name in Settings.model_fields}


def test_compose_describes_nodes_sharing_one_redis_behind_nginx():
    topology = compose_topology()
    assert topology.nodes == 3
    assert topology.redis
    assert topology.nginx
    assert topology.settings["TRUSTED_PROXIES"] == "1"  # nginx is the one hop the nodes believe


def test_every_node_setting_of_compose_is_a_real_setting_and_the_groups_name_real_ones():
    topology = compose_topology()
    assert set(topology.settings) <= SETTINGS, set(topology.settings) - SETTINGS
    assert PLACED_LOCALLY | SIZED_PER_MACHINE <= SETTINGS


def test_the_harness_cluster_takes_compose_shape_and_its_callers_flags_over_it():
    cluster = LocalCluster(redis=False)  # nothing starts before start()
    topology = compose_topology()
    assert len(cluster.ports) == topology.nodes
    assert cluster.node_flags == {"trusted_proxies": "1", "cors_origins": topology.settings["CORS_ORIGINS"]}
    assert LocalCluster(2, redis=False, trusted_proxies=2).node_flags["trusted_proxies"] == 2


def test_nodes_that_differ_in_compose_are_refused(tmp_path: Path):
    text = COMPOSE.read_text().replace(
        "  node3: *node", "  node3:\n    environment: {SCRYPT_HELPER_WORKERS: '4'}"
    )
    other = tmp_path / "docker-compose.yml"
    other.write_text(text)
    with pytest.raises(ValueError, match="share their settings"):
        compose_topology(other)
