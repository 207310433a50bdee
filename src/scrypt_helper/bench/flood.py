"""``scrypt-helper bench flood``: the paced flood beside an honest client, on each node shape.

Each node variant (``--node``, as in ``bench overload``) meets the flood of ``bench.honest``: 2,000
requests a second, each from a fresh IPv6 /56, on the built-in rules behind one trusted proxy. A
variant whose flags name ``redis_url=local`` gets a redis-server of its own on this machine, and
a third phase: the flood goes on while that Redis is killed, and the honest client is measured
during the outage before Redis is started again.

Figures, each beside its criterion:

- the honest client's rate beside the flood, against its rate alone (>= 85%);
- ``__lbheartbeat__`` p99 beside the flood (<= 50 ms);
- the node's CPU per refusal: the event loops' extra cores under the flood over the refusals a
  second, against the first variant's (<= 2x; the first is the reference, in memory by default);
- with Redis: Redis's own CPU per refusal; during the outage, the honest client's rate (>= 60%)
  and the 5xx answers anyone got (none).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from scrypt_helper.bench.criteria import Figure, at_least, at_most, table
from scrypt_helper.bench.honest import (
    FLOOD_NODE_FLAGS,
    FLOOD_RATE,
    check_flood,
    flood_summary,
    honest_client,
    start_flood,
)
from scrypt_helper.bench.local_servers import LocalRedis, LocalServer
from scrypt_helper.bench.overload import HEARTBEAT_P99_MS, NodeVariant, parse_variant
from scrypt_helper.bench.refusals import RoundError
from scrypt_helper.bench.report import progress, run_header
from scrypt_helper.bench.tls import http_get
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.observability.process_usage import tree_cpu_seconds

DEFAULT_VARIANTS = ("workers=2", "processes=2,workers=2,redis_url=local")
LOCAL_REDIS = "local"
HONEST_SHARE = 0.85
OUTAGE_SHARE = 0.60
CPU_PER_REFUSAL_RATIO = 2.0


def run_flood_bench(params: ScryptParams, engine: str, args: Any) -> dict[str, Any]:
    """Every variant in turn; the table printed; the report returned."""
    variants = [parse_variant(text) for text in args.node or DEFAULT_VARIANTS]
    report: dict[str, Any] = {
        **run_header(params, engine),
        "seconds": args.seconds,
        "flood_per_second": FLOOD_RATE,
        "variants": [measure_variant(params, engine, variant, args.seconds) for variant in variants],
    }
    figures = flood_figures(report["variants"])
    report["figures"] = [figure.as_dict() for figure in figures]
    print(
        f"\nflood of {FLOOD_RATE:.0f}/s fresh /56s beside an honest client, {report['cores']} cores "
        f"({report['cpu']}), engine {engine}, N={params.n}; generator on the same cores"
    )
    print(table(figures))
    return report


@contextlib.contextmanager
def node_for(
    variant: NodeVariant, engine: str, allowed: str
) -> Iterator[tuple[LocalServer, LocalRedis | None]]:
    """The variant's node on the built-in rules behind one trusted proxy, and its own Redis if it asks."""
    flags: dict[str, object] = {
        "engine": engine,
        "allowed_params": allowed,
        **FLOOD_NODE_FLAGS,
        **variant.flags,
    }
    with contextlib.ExitStack() as stack:
        redis = None
        if flags.get("redis_url") == LOCAL_REDIS:
            redis = stack.enter_context(LocalRedis())
            flags["redis_url"] = redis.url
        node = stack.enter_context(LocalServer(**flags))
        yield node, redis


def measure_variant(
    params: ScryptParams, engine: str, variant: NodeVariant, seconds: float
) -> dict[str, Any]:
    """The honest client alone, beside the flood, and beside it with Redis down; the costs of each."""
    with node_for(variant, engine, allowed_params_json(params)) as (node, redis):
        progress(f"[{variant.label}] honest client alone, {seconds:.0f} s")
        alone = asyncio.run(honest_client(node, params, seconds))
        # Beside the flood, then with Redis killed (after a pause for a sync to fail), with a phase
        # to spare so that the flood outlasts them.
        phases = 3 if redis is not None else 2
        flood = start_flood(node.host, node.port, params, phases * seconds)
        progress(f"[{variant.label}] beside the flood, {seconds:.0f} s")
        redis_cpu = _cpu(redis)
        during = asyncio.run(honest_client(node, params, seconds))
        redis_cpu = _cpu(redis) - redis_cpu
        outage = None
        if redis is not None:
            progress(f"[{variant.label}] beside the flood with Redis killed, {seconds:.0f} s")
            outage = _without(redis, node, params, seconds)
        result = flood.result()
    # A 5xx, or any other answer, is an error, not a figure.
    answered = check_flood(result, {"alone": alone, "beside the flood": during, "with Redis down": outage})
    refusals_per_second = sum(answered.values()) / result.seconds
    extra_cores = during["node_loop_cores"] - alone["node_loop_cores"]
    return {
        "label": variant.label,
        "flags": variant.flags,
        "alone": alone,
        "during_flood": during,
        "redis_down": outage,
        "flood": flood_summary(result),
        "node_cpu_us_per_refusal": round(1e6 * extra_cores / refusals_per_second, 1),
        "redis_cpu_us_per_refusal": (
            round(1e6 * redis_cpu / seconds / refusals_per_second, 1) if redis is not None else None
        ),
    }


def _without(redis: LocalRedis, node: LocalServer, params: ScryptParams, seconds: float) -> dict[str, Any]:
    """The honest client while Redis is down, and what the node's metrics said meanwhile."""
    redis.stop()
    try:
        time.sleep(0.5)  # long enough for a sync to fail
        metrics = http_get(node.url + "/metrics", timeout=5).text
        figure = asyncio.run(honest_client(node, params, seconds))
    finally:
        redis.start()
    figure["redis_up_metric"] = _metric(metrics, "scrypt_helper_redis_up")
    figure["redis_failovers_metric"] = _metric(metrics, "scrypt_helper_redis_failovers_total")
    return figure


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return math.nan


def _cpu(redis: LocalRedis | None) -> float:
    if redis is None or redis.process is None:
        return 0.0
    return tree_cpu_seconds(redis.process.pid)


def flood_figures(variants: list[dict[str, Any]]) -> list[Figure]:
    """Each variant's figures with their criteria; CPU per refusal against the first variant's."""
    reference = variants[0]["node_cpu_us_per_refusal"]
    figures = []
    for variant in variants:
        prefix = f"[{variant['label']}] " if len(variants) > 1 else ""
        alone, during, sent = variant["alone"], variant["during_flood"], variant["flood"]
        cores = sent["generator_cores"]
        figures += [
            Figure(
                f"{prefix}honest client's rate beside the flood",
                _share(during, alone),
                "%",
                at_least(100 * HONEST_SHARE),
                cores,
                f"{during['ok_per_second']:.1f}/s, alone {alone['ok_per_second']:.1f}/s",
            ),
            Figure(
                f"{prefix}__lbheartbeat__ p99 beside the flood",
                during["heartbeat_p99_ms"],
                "ms",
                at_most(HEARTBEAT_P99_MS),
                cores,
                f"alone {alone['heartbeat_p99_ms']:.1f} ms",
            ),
            Figure(
                f"{prefix}node CPU per refusal",
                variant["node_cpu_us_per_refusal"],
                "us",
                at_most(CPU_PER_REFUSAL_RATIO * reference) if variant is not variants[0] else None,
                cores,
                f"event loops {during['node_loop_cores']:.2f} cores, alone {alone['node_loop_cores']:.2f}; "
                f"{sent['answered_per_second']:,.0f} refusals/s",
            ),
        ]
        if variant["redis_cpu_us_per_refusal"] is not None:
            figures.append(
                Figure(
                    f"{prefix}Redis CPU per refusal", variant["redis_cpu_us_per_refusal"], "us", None, cores
                )
            )
        outage = variant["redis_down"]
        if outage is not None:
            figures.append(
                Figure(
                    f"{prefix}honest client's rate, Redis killed",
                    _share(outage, alone),
                    "%",
                    at_least(100 * OUTAGE_SHARE),
                    cores,
                    f"redis_up {outage['redis_up_metric']:g}, "
                    f"failovers {outage['redis_failovers_metric']:g}; "
                    f"{outage['rejected_503'] + outage['late_503']} 503s",
                )
            )
    return figures


def _share(figure: dict[str, Any], alone: dict[str, Any]) -> float:
    if not alone["ok_per_second"]:
        raise RoundError(f"the honest clients got no 200s alone: {alone}")
    return 100 * figure["ok_per_second"] / alone["ok_per_second"]
