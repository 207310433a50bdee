"""PNG plots of a service benchmark: throughput and latency against load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw_plots(report: dict[str, Any], raw_per_second: float, out: Path, stem: str) -> list[Path]:
    """Throughput vs concurrency (with the engine's raw limit) and latency percentiles vs concurrency."""
    rows = report["http"]
    clients = [row["concurrency"] for row in rows]
    title = f"{report['engine']['name']}, N={report['params']['N']}"

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(clients, [row["ok_per_second"] for row in rows], marker="o", label="service over HTTP")
    ax.axhline(raw_per_second, color="grey", linestyle="--", label=f"engine alone ({raw_per_second:.1f}/s)")
    ax.set(
        xscale="log", xlabel="concurrent clients", ylabel="hashes per second", title=f"Throughput: {title}"
    )
    _integer_ticks(ax, clients)
    throughput = out / f"{stem}-throughput.png"
    fig.savefig(throughput, dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        ax.plot(clients, [row[key] for row in rows], marker="o", label=label)
    ax.axhline(report["engine"]["single_hash_ms"], color="grey", linestyle="--", label="one hash alone")
    ax.set(xscale="log", xlabel="concurrent clients", ylabel="latency (ms)", title=f"Latency: {title}")
    _integer_ticks(ax, clients)
    latency = out / f"{stem}-latency.png"
    fig.savefig(latency, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [throughput, latency]


def _integer_ticks(ax: plt.Axes, clients: list[int]) -> None:
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.legend()
