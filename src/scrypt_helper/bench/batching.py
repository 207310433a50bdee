"""``scrypt-helper bench batching``: a batching window against none, at each load, in one run.

Two nodes on the same engine, one with ``--batch-window`` and one without, take turns in short
closed-loop rounds at each client count, so that the machine's drift falls on both alike. The
window is worth keeping if it wins at some load, loses no more than 2% at any, and costs a lone
client at most 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from typing import Any

from scrypt_helper.bench.criteria import Figure, at_least, at_most, table
from scrypt_helper.bench.hash_load import LoadFigure, hash_clients, percentile
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.report import progress
from scrypt_helper.core.config import Settings, allowed_params_json
from scrypt_helper.engines import ScryptParams

CLIENTS = (1, 2, 4, 16, 64)
ROUNDS = 4
ROUNDS_TINY = 1  # --tiny checks that the mode runs: one turn each per client count
MOST_LOSS = 0.02
MOST_LONE_COST_MS = 5.0


def measure_batching(params: ScryptParams, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Throughput and latency with and without the window, client count by client count."""
    window = args.batch_window
    common = {
        "engine": engine,
        "workers": args.workers,
        "allowed_params": allowed_params_json(params),
        "rules": "",
        "log_level": "WARNING",
        "max_connections_per_client": Settings.model_fields["max_connections"].default,
    }
    nodes = {"none": LocalServer(**common), "window": LocalServer(**common, batch_window=window)}
    rounds = ROUNDS_TINY if args.tiny else ROUNDS
    rows = []
    with nodes["none"], nodes["window"]:
        for clients in CLIENTS:
            progress(f"batching: {clients} clients, {rounds} rounds per node, window {window * 1000:g} ms")
            figures = {name: LoadFigure(concurrency=clients, seconds=0.0) for name in nodes}
            for _ in range(rounds):
                for name, node in nodes.items():
                    round_figure = asyncio.run(hash_clients(node.url, params, clients, args.seconds / rounds))
                    merge(figures[name], round_figure)
            rows.append({"clients": clients} | {name: summary(figure) for name, figure in figures.items()})
    return {"window_ms": window * 1000, "workers": args.workers, "rows": rows}


def merge(total: LoadFigure, part: LoadFigure) -> None:
    total.seconds += part.seconds
    total.ok += part.ok
    total.rejected += part.rejected
    total.late += part.late
    total.failed += part.failed
    total.ok_latencies_ms.extend(part.ok_latencies_ms)


def summary(figure: LoadFigure) -> dict[str, float]:
    return {
        "ok_per_second": round(figure.ok_per_second, 2),
        "p50_ms": round(percentile(figure.ok_latencies_ms, 50), 1),
        "p99_ms": round(percentile(figure.ok_latencies_ms, 99), 1),
        "failed": figure.failed,
    }


def batching_figures(report: dict[str, Any]) -> list[Figure]:
    """Each load's throughput ratio, the worst and best of them, and the lone client's cost."""
    figures = []
    ratios = []
    for row in report["rows"]:
        none, window = row["none"], row["window"]
        ratio = window["ok_per_second"] / none["ok_per_second"] if none["ok_per_second"] else math.nan
        ratios.append(ratio)
        figures.append(
            Figure(
                f"throughput with the window, {row['clients']} clients",
                100 * ratio,
                "%",
                note=f"{window['ok_per_second']:.1f}/s against {none['ok_per_second']:.1f}/s; "
                f"p50 {window['p50_ms']:.0f} against {none['p50_ms']:.0f} ms",
            )
        )
    figures.append(Figure("worst load's throughput with the window", 100 * min(ratios), "%", at_least(98.0)))
    figures.append(Figure("best load's throughput with the window", 100 * max(ratios), "%", at_least(100.1)))
    lone = report["rows"][0]
    cost = lone["window"]["p50_ms"] - lone["none"]["p50_ms"]
    figures.append(Figure("a lone client's p50 cost", cost, "ms", at_most(MOST_LONE_COST_MS)))
    return figures


def print_batching_report(report: dict[str, Any]) -> None:
    print(f"\nbatching window {report['window_ms']:g} ms against none, {report['workers']} workers")
    print(table(batching_figures(report)))
