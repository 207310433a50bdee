#!/usr/bin/env python3
"""Draw the Grafana dashboard's panels from a live Prometheus; run with .venv/bin/python."""

import argparse
import time
from pathlib import Path

from harness.dashboard import draw
from harness.monitoring import KEY_HEADERS, LIMITED_CLIENT, Load, MonitoredDeployment

DESCRIPTION = """Start the monitored loopback deployment (one node, nginx over two nodes with Redis, a real
Prometheus with deploy/prometheus), drive it through calm, overload and a rate-limited client, print
when each alert fired and cleared, and draw every panel of deploy/grafana/scrypt-helper.json from what
Prometheus scraped.

    .venv/bin/python scripts/dashboard_figure.py --output docs/figures/dashboard.png
"""


def alert_names(deployment: MonitoredDeployment) -> dict[str, str]:
    assert deployment.prometheus is not None
    return {a["labels"]["alertname"]: a["state"] for a in deployment.prometheus.alerts()}


def phase(
    deployment: MonitoredDeployment, name: str, seconds: float, loads: list[Load], seen: dict[str, str]
) -> None:
    """Run ``loads`` for ``seconds``, printing each alert's state changes (from ``seen``) as they happen."""
    began = time.monotonic()
    for load in loads:
        load.start()
    while time.monotonic() - began < seconds:
        now = alert_names(deployment)
        for alert in sorted(set(now) | set(seen)):
            if now.get(alert) != seen.get(alert):
                state = now.get(alert, "cleared")
                print(f"  {name:<9} +{time.monotonic() - began:5.1f} s  {alert} {state}")
        seen.clear()
        seen.update(now)
        time.sleep(0.2)
    for load in loads:
        statuses = load.stop()
        print(f"  {name:<9} {load.url} {dict(statuses)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("dashboard.png"))
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    args = parser.parse_args()
    with MonitoredDeployment() as deployment:
        began = time.time()
        cluster, node = deployment.cluster.url + "/", deployment.node.url + "/"
        seen = alert_names(deployment)
        phase(deployment, "calm", args.seconds, [Load(cluster, clients=2, headers=KEY_HEADERS)], seen)
        overload = [
            Load(node, clients=14),
            Load(cluster, clients=2, headers=KEY_HEADERS),
            Load(cluster, clients=1, local_address=LIMITED_CLIENT),
        ]
        phase(deployment, "overload", args.seconds, overload, seen)
        phase(deployment, "after", args.seconds, [], seen)
        assert deployment.prometheus is not None
        drawn = draw(deployment.prometheus, args.output, start=began, end=time.time())
        print(f"wrote {args.output}: series per panel {drawn}")


if __name__ == "__main__":
    main()
