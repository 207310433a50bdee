#!/usr/bin/env python3
"""Rehearse losing a whole region on this machine and print what the callers saw.

Two regions, each nginx (deploy/nginx) in front of two nodes and its own Redis; HAProxy in front of
both as the global router (one frontend per region, active checks on ``/__lbheartbeat__``). Under
steady load, region a is SIGKILLed whole (nodes, nginx, Redis at once), kept dead, brought back on the
same ports. Callers use the client library, local fallback off:

- failover: both frontends, their own region's first (half are nearest each region);
- router:   region a's frontend only (the global name, no second URL);
- direct:   region a's own proxy only (no global layer, no second URL).

Prints the failover time (the router's, the failover callers', and the later of the two, when all
traffic is on region b), failed calls per group, and how soon traffic returns to region a. Needs
nginx, redis-server and haproxy; run with .venv/bin/python. Times are seconds.

    .venv/bin/python scripts/region_failover.py                        # 10 s load, 20 s outage, 40 s after
    .venv/bin/python scripts/region_failover.py --check-interval 10    # Route 53's fast checks (10 s x 3)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ lives in the checkout, not in the package

from harness.haproxy import HealthCheck
from harness.rehearsal import GROUPS, Plan, Report, rehearse
from scrypt_helper.engines import ScryptParams
from scrypt_helper_client import DEFAULT_COOLDOWN

SMALL = ScryptParams(salt=b"scrypt-helper-figures", n=1024, r=8, p=1, buflen=32)


def arguments() -> argparse.Namespace:
    defaults = Plan(SMALL)
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callers", type=int, default=defaults.callers, help="callers with both URLs")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="calls a second per caller")
    parser.add_argument("--steady", type=float, default=defaults.steady, help="load before the kill")
    parser.add_argument("--outage", type=float, default=defaults.outage, help="kill -> restart")
    parser.add_argument("--after", type=float, default=defaults.after, help="load once region a is back")
    parser.add_argument("--check-interval", type=float, default=defaults.check.inter_ms / 1000)
    parser.add_argument("--fall", type=int, default=defaults.check.fall, help="failed checks to go down")
    parser.add_argument("--rise", type=int, default=defaults.check.rise, help="passed checks to come up")
    parser.add_argument("--cooldown", type=float, default=DEFAULT_COOLDOWN, help="the clients' cool-down")
    parser.add_argument("--max-attempts", type=int, default=defaults.max_attempts)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:6.2f} s"


def figures(report: Report) -> dict[str, object]:
    r = report
    return {
        "router_failover_s": r.router_failover(),
        "callers_failover_s": r.callers_failover(),
        "failover_s": r.failover(),
        "router_back_s": r.router_back(),
        "traffic_back_s": r.traffic_back(),
        "traffic_restored_s": r.traffic_restored(),
        "restart_s": r.back - r.restarting,
        "share_a_before": r.share("a", r.began, r.killed),
        "share_a_outage": r.share("a", r.killed + (r.router_failover() or 0), r.restarting),
        "share_a_last_10s": r.share("a", max(r.back, r.ended - 10), r.ended),
        "groups": {
            name: {
                "calls": g.calls,
                "failed": g.failed,
                "failed_attempts": len(g.failed_attempts),
                "slowest_call_in_outage_s": r.max_latency(name, r.killed, r.restarting),
            }
            for name, g in r.groups.items()
        },
        "plan": {**asdict(r.plan), "params": None},
    }


def main() -> int:
    args = arguments()
    plan = Plan(
        SMALL,
        callers=args.callers,
        rate=args.rate,
        steady=args.steady,
        outage=args.outage,
        after=args.after,
        check=HealthCheck(round(args.check_interval * 1000), args.fall, args.rise),
        cooldown=args.cooldown,
        max_attempts=args.max_attempts,
    )
    print(
        f"router checks every {args.check_interval:g} s, down after {args.fall}, up after {args.rise}; "
        f"client cool-down {args.cooldown:g} s, {args.max_attempts} attempts; "
        f"{args.callers} failover callers, "
        f"1 router, 1 direct, {args.rate:g} calls/s each; load {args.steady:g} s, outage {args.outage:g} s, "
        f"after {args.after:g} s",
        flush=True,
    )
    report = rehearse(plan)
    found = figures(report)
    rows = [
        ("router failover (kill -> router sends region a nothing)", report.router_failover()),
        ("failover callers' last failed attempt after the kill", report.callers_failover()),
        ("failover time (kill -> all traffic on region b)", report.failover()),
        ("region a restart (outage over -> nginx and nodes answering)", report.back - report.restarting),
        ("router back (region a up -> router sends it traffic)", report.router_back()),
        ("traffic back (region a up -> first answer from it)", report.traffic_back()),
        ("traffic restored (region a up -> 1 s at 90% of its share)", report.traffic_restored()),
    ]
    print()
    for label, value in rows:
        print(f"{label:<62} {seconds(value)}")
    print(
        f"region a's share of answers: before {found['share_a_before']:.0%}, "
        f"during the outage {found['share_a_outage']:.0%}, last 10 s {found['share_a_last_10s']:.0%}"
    )
    print()
    print(
        f"{'callers':<10} {'calls':>7} {'failed':>7} {'failed attempts':>16} {'slowest call in outage':>23}"
    )
    for name in GROUPS:
        g, slowest = report.groups[name], report.max_latency(name, report.killed, report.restarting)
        print(f"{name:<10} {g.calls:>7} {g.failed:>7} {len(g.failed_attempts):>16} {slowest:>21.3f} s")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2, default=str) + "\n")
    return 0 if report.groups["failover"].failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
