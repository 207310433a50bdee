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


def draw_overload_plots(report: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """Goodput against offered load, and an honest client beside a flood, for each node measured
    (each where the report has its part)."""
    variants = report["variants"]
    labels = _distinct_labels(variants)
    paths = []
    if variants and "open_loop" in variants[0]:
        paths.append(_draw_goodput(report, labels, out / f"{stem}-goodput.png"))
    if variants and "flood" in variants[0]:
        paths.append(_draw_flood(variants, labels, out / f"{stem}-flood.png"))
    return paths


def _draw_goodput(report: dict[str, Any], labels: list[str], path: Path) -> Path:
    variants = report["variants"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant, label in zip(variants, labels, strict=True):
        levels = variant["open_loop"]
        multiples = [1.0] + [level["multiple"] for level in levels]
        goodput = [100.0] + [level["goodput_pct"] for level in levels]
        ax.plot(multiples, goodput, marker="o", label=label.replace("\n", ", "))
    ax.axhline(100, color="grey", linestyle="--", label="closed-loop capacity")
    ax.set(
        xscale="log",
        xlabel="offered load (x capacity, open loop)",
        ylabel="goodput (% of capacity)",
        ylim=(0, 110),
        title=f"Goodput under overload: {report['engine']}, {report['cores']} cores",
    )
    ax.set_xticks([1, 2, 5, 20], ["1", "2", "5", "20"])
    ax.minorticks_off()
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _draw_flood(variants: list[dict[str, Any]], labels: list[str], path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(11, 4))
    for ax, (key, title) in zip(
        axes,
        (
            ("ok_per_second", "honest answers/s"),
            ("p99_ms", "honest p99 (ms)"),
            ("heartbeat_p99_ms", "__lbheartbeat__ p99 (ms)"),
        ),
        strict=True,
    ):
        positions = range(len(variants))
        alone = [variant["flood"]["alone"][key] for variant in variants]
        flooded = [variant["flood"]["during_flood"][key] for variant in variants]
        ax.bar([p - 0.2 for p in positions], alone, width=0.4, label="alone")
        ax.bar([p + 0.2 for p in positions], flooded, width=0.4, label="beside the flood")
        ax.set_xticks(list(positions), labels, fontsize=8, rotation=20)
        ax.set_title(title)
    axes[0].legend()
    rate = variants[0]["flood"]["flood"]["target_per_second"]
    fig.suptitle(f"An honest client beside a flood of refusals ({rate:,.0f}/s asked)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _distinct_labels(variants: list[dict[str, Any]]) -> list[str]:
    """Each node's flags that differ between the nodes, one per line (its label if none differ)."""
    flags = [variant.get("flags") or {} for variant in variants]
    names = sorted({name for each in flags for name in each})
    differing = [name for name in names if len({str(each.get(name)) for each in flags}) > 1]
    if not differing:
        return [variant["label"] for variant in variants]
    return ["\n".join(f"{name}={each.get(name, '-')}" for name in differing) for each in flags]
