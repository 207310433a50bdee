"""``scrypt-helper bench overload``: throughput under overload, what a refusal costs, a flood beside
an honest client; every figure printed beside its criterion with a PASS or MISS mark.

1. Closed-loop capacity: 64 clients, rate limits off.
2. Open loop (Poisson arrivals) at 2x, 5x and 20x that capacity on the same node: goodput, the
   node's refusal latency (its own ``request.summary`` ``t``), refusals that came only after waiting
   out ``--max-queue-wait``, the generator's cores beside each.
3. Cheap refusals (``bench.refusals``): 429, 400 and 503 answers per second against a bare app's.
4. A paced flood beside an honest client (``bench.honest``).

Parts 1, 2 and 4 run once per node variant: a set of ``serve`` flags (``--node processes=2,workers=2``),
so that process counts or a batching window compare in one run. Then the batching window
(``bench.batching``). ``--parts`` picks some of them: ``open-loop`` (1 and 2), ``refusals``,
``flood`` and ``batching``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scrypt_helper.bench.batching import batching_figures, measure_batching
from scrypt_helper.bench.criteria import Figure, at_least, at_most, table
from scrypt_helper.bench.hash_load import hash_clients, percentile
from scrypt_helper.bench.honest import FLOOD_RATE, HONEST_CLIENTS, measure_flood
from scrypt_helper.bench.load import LATE_MS, OpenLoopResult, Schedule, hash_requests, run_open_loop
from scrypt_helper.bench.local_servers import LocalServer
from scrypt_helper.bench.refusals import RATIO_TARGET, measure_refusals
from scrypt_helper.bench.report import progress, run_header
from scrypt_helper.core.config import Settings, allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.observability.process_usage import cpu_seconds, tree_cpu_seconds

CAPACITY_CLIENTS = 64
MULTIPLES = (2, 5, 20)
GOODPUT_TARGETS = {5: 0.85, 20: 0.60}
REFUSAL_P99_MS = 20.0
LATE_REFUSALS_PCT = 1.0  # at 5x
LATE_REFUSALS_AT = 5
HONEST_RATE_SHARE = 0.70
HONEST_P99_RATIO = 2.0
HEARTBEAT_P99_MS = 50.0
OPEN_LOOP_CONNECTIONS = 4096  # the node's cap; the generator stays below it


@dataclass(frozen=True, slots=True)
class NodeVariant:
    """A set of ``serve`` flags, without dashes (``{"processes": "2", "workers": "1"}``)."""

    label: str
    flags: dict[str, object] = field(default_factory=dict)

    @property
    def processes(self) -> int:
        return int(str(self.flags.get("processes", 1)))

    @property
    def max_queue_wait(self) -> float:
        return float(str(self.flags.get("max_queue_wait", Settings.model_fields["max_queue_wait"].default)))


def parse_variant(text: str) -> NodeVariant:
    """``processes=2,workers=2`` as a variant; flag names with dashes or underscores."""
    flags: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--node wants name=value pairs separated by commas, not {item!r}")
        flags[name.strip().lstrip("-").replace("-", "_")] = value.strip()
    return NodeVariant(text, flags)


def post_summaries(logs: str) -> list[dict[str, Any]]:
    """The ``request.summary`` fields of every ``POST /`` in a node's log."""
    rows = []
    for line in logs.splitlines():
        if '"request.summary"' not in line:
            continue
        fields = json.loads(line).get("Fields", {})
        if fields.get("method") == "POST" and fields.get("path") == "/":
            rows.append(fields)
    return rows


def node_refusals(summaries: list[dict[str, Any]], max_wait_ms: float) -> dict[str, Any]:
    """Refusals as the node timed them: count, p50 and p99 of ``t``, and the share that took at
    least the max wait. A client that left (499) is no refusal."""
    times = [float(row["t"]) for row in summaries if int(row["code"]) >= 400 and int(row["code"]) != 499]
    late = sum(t >= max_wait_ms for t in times)
    return {
        "codes": {str(code): n for code, n in sorted(Counter(int(row["code"]) for row in summaries).items())},
        "refusals": len(times),
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "late_pct": 100 * late / len(times) if times else math.nan,
    }


def level_report(
    multiple: int, capacity: float, result: OpenLoopResult, node: dict[str, Any], max_wait: float
) -> dict[str, Any]:
    """One open-loop level: what was offered and sent, goodput, both sides' view of the refusals."""
    refused = [ms for status, times in result.latencies_ms.items() if status >= 400 for ms in times]
    client_late = sum(ms >= max_wait * 1000 for ms in refused)
    return {
        "multiple": multiple,
        "offered_per_second": round(multiple * capacity, 1),
        "arrivals": result.offered,
        "sent": result.sent,
        "late_sends": result.late,
        "max_lag_ms": round(result.max_lag_ms, 1),
        "unsent": result.unsent,
        "unanswered": result.unanswered,
        "connections": result.connections,
        "statuses": {str(status): count for status, count in sorted(result.statuses.items())},
        "goodput_per_second": round(result.ok_per_second, 2),
        "goodput_pct": round(100 * result.ok_per_second / capacity, 1),
        "ok_p99_ms": round(percentile(result.latencies_ms.get(200, []), 99), 1),
        "generator_cores": round(result.cores, 2),
        "node": node,
        "client_refusal_p99_ms": round(percentile(refused, 99), 1),
        "client_late_pct": round(100 * client_late / len(refused), 2) if refused else math.nan,
    }


def measure_variant(
    params: ScryptParams, variant: NodeVariant, engine: str, seconds: float, parts: Sequence[str]
) -> dict[str, Any]:
    """Closed-loop capacity, then the open-loop levels, on one node; then the flood on another
    (each where ``parts`` names it)."""
    allowed = allowed_params_json(params)
    report: dict[str, Any] = {
        "label": variant.label,
        "flags": variant.flags,
        "max_queue_wait": variant.max_queue_wait,
    }
    if "open-loop" in parts:
        report.update(measure_open_loop(params, variant, engine, seconds))
    if "flood" in parts:
        progress(
            f"[{variant.label}] honest client ({HONEST_CLIENTS} clients) alone, then beside a "
            f"{FLOOD_RATE:.0f}/s flood, {seconds:.0f} s each"
        )
        report["flood"] = measure_flood(params, allowed, seconds, {"engine": engine, **variant.flags})
    return report


def measure_open_loop(
    params: ScryptParams, variant: NodeVariant, engine: str, seconds: float
) -> dict[str, Any]:
    """Closed-loop capacity, then the open-loop levels at multiples of it, on one node."""
    allowed = allowed_params_json(params)
    max_wait = variant.max_queue_wait
    report: dict[str, Any] = {}
    flags = {
        "engine": engine,
        "allowed_params": allowed,
        "rules": "",
        "max_connections": OPEN_LOOP_CONNECTIONS,
        # Every client is this one machine: the node's cap is the only one.
        "max_connections_per_client": OPEN_LOOP_CONNECTIONS,
        # The node's own times of its refusals come from their summary lines: log every one. A
        # node on the default budget logs fewer, so its goodput is if anything higher than this.
        "refusal_log_rate": 0,
        **variant.flags,
    }
    with LocalServer(**flags) as node:
        progress(f"[{variant.label}] closed loop, {CAPACITY_CLIENTS} clients, {seconds:.0f} s")
        cpu_before = cpu_seconds()
        loop_before = tree_cpu_seconds(node.process.pid, main_threads=True)  # type: ignore[union-attr]
        capacity = asyncio.run(hash_clients(node.url, params, CAPACITY_CLIENTS, seconds))
        generator_cpu = cpu_seconds() - cpu_before
        loop_cpu = tree_cpu_seconds(node.process.pid, main_threads=True) - loop_before  # type: ignore[union-attr]
        answered = capacity.ok + capacity.rejected + capacity.late
        report["capacity"] = {
            **capacity.summary(),
            "generator_cores": round(generator_cpu / capacity.seconds, 2),
            # The event loops' CPU per request at capacity (hash workers not counted).
            "loop_us_per_request": round(1e6 * loop_cpu / answered, 1) if answered else math.nan,
            "workers": int(variant.flags.get("workers", os.cpu_count() or 1)),
        }
        rate = capacity.ok_per_second
        if rate <= 0:
            raise RuntimeError(f"the closed loop got no 200s: {capacity.summary()}")
        report["open_loop"] = []
        for multiple in MULTIPLES:
            offered = multiple * rate
            progress(
                f"[{variant.label}] open loop at {multiple}x capacity: {offered:.0f}/s for {seconds:.0f} s"
            )
            logged = len(node.logs())
            result = run_open_loop(
                hash_requests(node.host, node.port, params),
                Schedule(offered, seconds, seed=multiple),
                grace=max_wait + 5,
                # Enough for the answers in flight: a queue's worth waiting, the rest answered at once.
                warm=min(1000, int(offered * 0.2) + 32),
            )
            time.sleep(0.2)  # the node logs each answer as it sends it
            node_view = node_refusals(post_summaries(node.logs()[logged:]), max_wait * 1000)
            report["open_loop"].append(level_report(multiple, rate, result, node_view, max_wait))
    return report


def feeding_figures(capacity: dict[str, Any], prefix: str) -> list[Figure]:
    """What one event loop spends per request at capacity, and the largest node it could feed."""
    loop_us = capacity.get("loop_us_per_request", math.nan)
    if not loop_us or math.isnan(loop_us):
        return []
    per_core = capacity["ok_per_second"] / max(1, capacity["workers"])
    requests = 1e6 / loop_us
    return [
        Figure(f"{prefix}event-loop CPU per request at capacity", loop_us, "us"),
        Figure(
            f"{prefix}largest node one event loop feeds",
            requests / per_core,
            "cores",
            note=f"{requests:,.0f} requests/s at {per_core:.1f} hashes/s per core",
        ),
    ]


def variant_figures(report: dict[str, Any], prefix: str) -> list[Figure]:
    """A variant's figures with their criteria, for the parts it measured."""
    figures = open_loop_figures(report, prefix) if "capacity" in report else []
    if "flood" in report:
        figures += flood_figures(report["flood"], prefix)
    return figures


def open_loop_figures(report: dict[str, Any], prefix: str) -> list[Figure]:
    """Capacity, and each open-loop level's goodput and refusals."""
    capacity = report["capacity"]
    figures = [
        Figure(
            f"{prefix}capacity, closed loop, {CAPACITY_CLIENTS} clients",
            capacity["ok_per_second"],
            "/s",
            None,
            capacity["generator_cores"],
            f"p99 {capacity['p99_ms']:.0f} ms; {capacity['rejected_503'] + capacity['late_503']} 503s",
        ),
        *feeding_figures(capacity, prefix),
    ]
    for level in report["open_loop"]:
        m, node = level["multiple"], level["node"]
        goodput_target = GOODPUT_TARGETS.get(m)
        figures.append(
            Figure(
                f"{prefix}goodput at {m}x ({level['offered_per_second']:.0f}/s offered)",
                level["goodput_pct"],
                "%",
                at_least(100 * goodput_target) if goodput_target else None,
                level["generator_cores"],
                f"{level['goodput_per_second']:.1f}/s; "
                f"{level['late_sends']} arrivals sent > {LATE_MS:g} ms late",
            )
        )
        figures.append(
            Figure(
                f"{prefix}refusal p99 at the node, {m}x",
                node["p99_ms"],
                "ms",
                at_most(REFUSAL_P99_MS),
                level["generator_cores"],
                f"{node['refusals']} refusals; client p99 {level['client_refusal_p99_ms']:.0f} ms",
            )
        )
        figures.append(
            Figure(
                f"{prefix}refusals after >= max wait, {m}x",
                node["late_pct"],
                "%",
                at_most(LATE_REFUSALS_PCT) if m == LATE_REFUSALS_AT else None,
                level["generator_cores"],
                f"at the node; the client saw {level['client_late_pct']:.1f}%",
            )
        )
    return figures


def flood_figures(flood: dict[str, Any], prefix: str) -> list[Figure]:
    """The honest client beside the flood, and the flood achieved."""
    alone, during, sent = flood["alone"], flood["during_flood"], flood["flood"]
    return [
        Figure(
            f"{prefix}honest client's rate under the flood",
            100 * during["ok_per_second"] / alone["ok_per_second"] if alone["ok_per_second"] else math.nan,
            "%",
            at_least(100 * HONEST_RATE_SHARE),
            sent["generator_cores"],
            f"{during['ok_per_second']:.1f}/s, alone {alone['ok_per_second']:.1f}/s; "
            f"node loop {during['node_loop_cores']:.2f} cores, alone {alone['node_loop_cores']:.2f}",
        ),
        Figure(
            f"{prefix}honest client's p99 under the flood",
            during["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else math.nan,
            "x",
            at_most(HONEST_P99_RATIO),
            sent["generator_cores"],
            f"{during['p99_ms']:.0f} ms, alone {alone['p99_ms']:.0f} ms",
        ),
        Figure(
            f"{prefix}__lbheartbeat__ p99 under the flood",
            during["heartbeat_p99_ms"],
            "ms",
            at_most(HEARTBEAT_P99_MS),
            sent["generator_cores"],
            f"alone {alone['heartbeat_p99_ms']:.1f} ms",
        ),
        Figure(
            f"{prefix}flood achieved (paced, {FLOOD_RATE:.0f}/s asked)",
            sent["sent_per_second"],
            "/s",
            None,
            sent["generator_cores"],
            f"answered {sent['answered_per_second']:,.0f}/s {sent['statuses']}; {sent['unsent']} unsent, "
            f"{sent['unanswered']} unanswered; {sent['late_sends']} sent > {LATE_MS:g} ms late",
        ),
    ]


def refusal_figures(report: dict[str, Any], prefix: str = "") -> list[Figure]:
    """Each refusal's rate against the bare app's, through bench's generator and through wrk."""
    figures = []
    for tool in ("bench", "wrk"):
        rows = report.get(tool) or {}
        bare = rows.get("bare")
        if not bare:
            continue
        figures.append(
            Figure(
                f"{prefix}bare app 200s/s ({tool})",
                bare["per_second"],
                "/s",
                None,
                bare["generator_cores"],
                f"{bare['server_cpu_us_per_answer']:.0f} us of server CPU each",
            )
        )
        for kind in ("429", "400", "503"):
            row = rows.get(kind)
            if row is None:
                continue
            figures.append(
                Figure(
                    f"{prefix}{kind}s/s vs bare ({tool})",
                    100 * row["vs_bare"],
                    "%",
                    at_least(100 * RATIO_TARGET) if tool == "bench" else None,
                    row["generator_cores"],
                    f"{row['per_second']:,.0f}/s; {row['server_cpu_us_per_answer']:.0f} us of node CPU each",
                )
            )
    return figures


def run_overload_bench(params: ScryptParams, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """The parts ``args.parts`` names: each variant's, then the refusals and the batching window;
    the table printed; the report returned."""
    variants = [parse_variant(text) for text in args.node] or [NodeVariant(f"workers={args.workers}")]
    for variant in variants:
        variant.flags.setdefault("workers", args.workers)
    parts = args.parts
    report: dict[str, Any] = {
        **run_header(params, engine),
        "seconds": args.seconds,
        "parts": list(parts),
        "variants": [measure_variant(params, variant, engine, args.seconds, parts) for variant in variants],
    }
    figures = []
    for variant in report["variants"]:
        figures += variant_figures(variant, f"[{variant['label']}] " if len(variants) > 1 else "")
    refusals: list[dict[str, Any]] = []
    if "refusals" in parts:
        refusals, refusal_rows = measure_refusal_part(params, variants, args.seconds, report)
        figures += refusal_rows
    if "batching" in parts:
        report["batching"] = measure_batching(params, engine, args)
        figures += batching_figures(report["batching"])
    report["figures"] = [figure.as_dict() for figure in figures]
    print(
        f"\noverload on {report['cores']} cores ({report['cpu']}), engine {engine}, N={params.n}, "
        f"{variants[0].label}, max-queue-wait {variants[0].max_queue_wait:g} s; generator on the same cores"
    )
    print(table(figures))
    for note in {note for rows in refusals for note in rows["notes"]}:
        print(f"note: {note}")
    return report


def measure_refusal_part(
    params: ScryptParams, variants: list[NodeVariant], seconds: float, report: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Figure]]:
    """The refusals against the bare app, into ``report``; each measurement and its figures."""
    wrk_rounds = max(1, int(seconds // 4))
    # Refusals once, on the first variant's process count; once per variant where the variants
    # differ in what judges a refusal (``early_admission``), so that the two columns compare.
    judged_apart = (
        len({str(variant.flags.get("early_admission", "true")).lower() for variant in variants}) > 1
    )
    measured = variants if judged_apart else variants[:1]
    refusals = [
        measure_refusals(
            params,
            seconds,
            processes=variant.processes,
            wrk_rounds=wrk_rounds,
            node_flags={k: v for k, v in variant.flags.items() if k == "early_admission"},
        )
        for variant in measured
    ]
    report["refusals"] = refusals[0]
    if judged_apart:
        report["refusals_by_variant"] = {
            variant.label: r for variant, r in zip(measured, refusals, strict=True)
        }
    figures = []
    for variant, rows in zip(measured, refusals, strict=True):
        figures += refusal_figures(rows, f"[{variant.label}] " if judged_apart else "")
    return refusals, figures
