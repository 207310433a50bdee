"""The local cluster's one description: ``deploy/docker/docker-compose.yml``, read for the harness.

Compose says what the cluster is: how many nodes, one Redis they share, nginx in front, and each
node's settings. The harness builds the same shape on loopback (``harness.cluster.LocalCluster``):
the same node count, a Redis when compose has one, the shipped nginx config rendered for local
ports, and the nodes' settings that define the shape. The settings compose sizes for a 2-core
container or points at its own network are the harness's to choose on a shared test machine
(``PLACED_LOCALLY``, ``SIZED_PER_MACHINE``); any other setting compose gains, the harness takes as it
is (``tests/deploy/test_topology.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from scrypt_helper.core.config import ENV_PREFIX

COMPOSE = Path(__file__).resolve().parents[1] / "deploy" / "docker" / "docker-compose.yml"
NODE_SERVICE = re.compile(r"node\d+")
#: Where a loopback cluster's node listens and finds Redis: free ports and the harness's own Redis.
PLACED_LOCALLY = frozenset({"REDIS_URL", "METRICS_PORT", "HOST", "PORT"})
#: Sized for one 2-core container each; loopback nodes share one machine's cores with the tests.
SIZED_PER_MACHINE = frozenset({"ENGINE", "WORKERS", "PROCESSES", "DRAIN_SECONDS", "SHUTDOWN_TIMEOUT"})


@dataclass(frozen=True, slots=True)
class Topology:
    """A cluster's shape: its nodes, whether they share a Redis, and each node's settings by name."""

    nodes: int
    redis: bool
    nginx: bool
    settings: dict[str, str]

    def shape_flags(self) -> dict[str, object]:
        """The node settings a loopback cluster takes as they are, as ``serve`` flag names."""
        return {
            name.lower(): value
            for name, value in self.settings.items()
            if name not in PLACED_LOCALLY | SIZED_PER_MACHINE
        }


def compose_topology(path: Path = COMPOSE) -> Topology:
    """The cluster ``path`` describes (its node services share one settings anchor)."""
    services = yaml.safe_load(path.read_text())["services"]
    nodes = [service for name, service in services.items() if NODE_SERVICE.fullmatch(name)]
    environments = [service.get("environment", {}) for service in nodes]
    if not nodes or any(environment != environments[0] for environment in environments):
        raise ValueError(f"{path}: the nodes must exist and share their settings")
    settings = {
        name.removeprefix(ENV_PREFIX): str(value)
        for name, value in environments[0].items()
        if name.startswith(ENV_PREFIX)
    }
    return Topology(nodes=len(nodes), redis="redis" in services, nginx="nginx" in services, settings=settings)
