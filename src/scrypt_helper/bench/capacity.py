"""Turn measured hashes per second per core into machines and monthly cost for a peak load."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HOURS_PER_MONTH = 730
# Hash memory per lane at the production parameters (128 * r * N bytes), plus the process itself.
LANE_BYTES = 128 * 8 * 65536
PROCESS_BYTES = 256 << 20


@dataclass(frozen=True, slots=True)
class InstanceType:
    """One row of the price table."""

    name: str
    vcpus: int
    memory_gib: float
    usd_per_hour: float


@dataclass(frozen=True, slots=True)
class Plan:
    """Machines of one type for a peak load, with one spare and a floor of two zones."""

    instance: InstanceType
    nodes: int
    ops_per_node: float
    monthly_usd: float
    fits_memory: bool


def load_instances(path: Path | None = None) -> list[InstanceType]:
    """The price table: ``path``, or the one shipped with the package (edit a copy to change it)."""
    text = (
        path.read_text()
        if path
        else resources.files("scrypt_helper.bench").joinpath("instances.csv").read_text()
    )
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return [
        InstanceType(row["name"], int(row["vcpus"]), float(row["memory_gib"]), float(row["usd_per_hour"]))
        for row in rows
    ]


def ops_per_core_from_report(path: Path) -> float:
    """Hashes per second per core that a ``bench`` report measured over HTTP (its best row)."""
    report = json.loads(path.read_text())
    workers = report["workers"]
    return max(row["ok_per_second"] for row in report["http"]) / workers


def plan(
    instance: InstanceType, peak_per_second: float, ops_per_core: float, *, utilization: float, lanes: int
) -> Plan:
    """Nodes to serve ``peak_per_second`` at ``utilization`` of capacity, plus one spare (N+1), at least 2."""
    ops_per_node = instance.vcpus * ops_per_core
    nodes = max(2, math.ceil(peak_per_second / (ops_per_node * utilization)) + 1)
    memory = instance.vcpus * lanes * LANE_BYTES + PROCESS_BYTES
    return Plan(
        instance=instance,
        nodes=nodes,
        ops_per_node=ops_per_node,
        monthly_usd=nodes * instance.usd_per_hour * HOURS_PER_MONTH,
        fits_memory=memory <= instance.memory_gib * (1 << 30),
    )


def capacity_report(
    peaks: list[float],
    ops_per_core: float,
    *,
    instances: list[InstanceType],
    utilization: float = 0.8,
    lanes: int = 8,
) -> str:
    """A table per peak load: every instance type, cheapest first."""
    lines = [
        f"capacity at {ops_per_core:.1f} hashes/s per core, nodes run at most {utilization:.0%} busy, N+1"
    ]
    for peak in peaks:
        plans = sorted(
            (plan(i, peak, ops_per_core, utilization=utilization, lanes=lanes) for i in instances),
            key=lambda p: (not p.fits_memory, p.monthly_usd),
        )
        lines.append(f"\npeak {peak:,.0f} logins/s")
        lines.append(f"{'instance':<16}{'vCPU':>5}{'ops/s/node':>12}{'nodes':>7}{'USD/month':>12}  memory")
        for p in plans:
            lines.append(
                f"{p.instance.name:<16}{p.instance.vcpus:>5}{p.ops_per_node:>12.0f}{p.nodes:>7}"
                f"{p.monthly_usd:>12,.0f}  {'ok' if p.fits_memory else 'TOO SMALL'}"
            )
    return "\n".join(lines)
