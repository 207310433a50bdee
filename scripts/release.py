#!/usr/bin/env python3
"""Release gate: deploy a load-test stack, wait for health, run the distributed load test with the
success criteria, tear the stack down, and promote only when every criterion was met.

    .venv/bin/python scripts/release.py local            # the loopback cluster (nginx, nodes, Redis)
    .venv/bin/python scripts/release.py aws --stack-name NAME --package-spec URL \\
        --candidate IMAGE:candidate --promote-to IMAGE:1.2.3 --parameter VpcId=vpc-... ...

The same steps run in both; only the stack differs. ``local`` starts ``harness.cluster.LocalCluster``
and reports the verdict; ``aws`` deploys ``deploy/aws/scrypt-helper.yaml`` with fixed-size load-test
parameters and promotes by tagging the candidate image (``docker buildx imagetools create``). The
criteria default to the load-test command of ``docs/capacity.md``. The last line says ``promoted``
or ``not promoted``; the exit status is 0 only when promoted.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ and loadtest/ live in the checkout, not in the package

import httpx

from harness.cluster import LocalCluster
from loadtest.run import run as run_load_test
from scrypt_helper import __version__
from scrypt_helper.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper.wire import wire_params

TEMPLATE = ROOT / "deploy" / "aws" / "scrypt-helper.yaml"
SMALL = ScryptParams(salt=b"scrypt-helper-release", n=1024, r=8, p=1, buflen=32)
# A load-test stack keeps its size: autoscaling during the run would blur the capacity it measures.
AWS_LOAD_TEST_PARAMETERS = {"MinSize": "2", "MaxSize": "2", "InstanceType": "c7i.large"}


class Stack(Protocol):
    """Where the release is load-tested: deployed, torn down, and the place its image is promoted."""

    def deploy(self) -> str:
        """Bring the stack up; its base URL."""
        ...

    def teardown(self) -> None: ...

    def promote(self) -> None: ...


class LocalStack:
    """The loopback cluster: nginx from deploy/nginx in front of ``nodes`` nodes sharing one Redis."""

    def __init__(self, nodes: int, workers: int, params: ScryptParams, engine: str | None) -> None:
        flags: dict[str, object] = {"workers": workers, "allowed_params": allowed_params_json(params)}
        if engine:
            flags["engine"] = engine
        # Every simulated user comes from 127.0.0.1: the abuse rules would ban the load generator.
        self.cluster = LocalCluster(nodes, redis=True, rules="", **flags)

    def deploy(self) -> str:
        return self.cluster.start().url

    def teardown(self) -> None:
        self.cluster.stop()

    def promote(self) -> None:
        """No registry here: the verdict is the result."""


class AwsStack:
    """The regional CloudFormation stack with load-test parameters; promotion tags the candidate image."""

    def __init__(
        self,
        name: str,
        package_spec: str,
        parameters: dict[str, str],
        candidate: str | None,
        promote_to: list[str],
    ) -> None:
        self.name = name
        self.parameters = {**AWS_LOAD_TEST_PARAMETERS, **parameters, "PackageSpec": package_spec}
        self.candidate = candidate
        self.promote_to = promote_to

    def deploy_command(self) -> list[str]:
        overrides = [f"{key}={value}" for key, value in self.parameters.items()]
        return [
            *("aws", "cloudformation", "deploy", "--stack-name", self.name),
            *("--template-file", str(TEMPLATE), "--capabilities", "CAPABILITY_IAM"),
            *("--parameter-overrides", *overrides),
        ]

    def deploy(self) -> str:
        subprocess.run(self.deploy_command(), check=True)
        outputs = subprocess.run(
            [
                *("aws", "cloudformation", "describe-stacks", "--stack-name", self.name),
                *("--query", "Stacks[0].Outputs[?OutputKey=='LoadBalancerDNSName'].OutputValue"),
                *("--output", "text"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return f"https://{outputs.stdout.strip()}"

    def teardown(self) -> None:
        subprocess.run(["aws", "cloudformation", "delete-stack", "--stack-name", self.name], check=True)
        subprocess.run(
            ["aws", "cloudformation", "wait", "stack-delete-complete", "--stack-name", self.name], check=True
        )

    def promote(self) -> None:
        if not self.candidate or not self.promote_to:
            return
        tags = [arg for tag in self.promote_to for arg in ("--tag", tag)]
        subprocess.run(["docker", "buildx", "imagetools", "create", *tags, self.candidate], check=True)


def wait_for_health(url: str, timeout: float) -> None:
    """Until ``__lbheartbeat__`` answers 200 several times in a row (every target of the LB in turn)."""
    deadline = time.monotonic() + timeout
    healthy = 0
    # A stack's load balancer name is not on its certificate; these checks carry nothing secret.
    with httpx.Client(timeout=5, verify=False) as client:  # noqa: S501
        while time.monotonic() < deadline:
            try:
                healthy = healthy + 1 if client.get(url + "/__lbheartbeat__").status_code == 200 else 0
            except httpx.TransportError:
                healthy = 0
            if healthy >= 5:
                return
            time.sleep(0.2 if healthy else 1.0)
    raise TimeoutError(f"{url} was not healthy within {timeout:.0f} s")


@contextmanager
def deployed(stack: Stack) -> Iterator[str]:
    """The stack up for the body, and torn down after it whatever happened."""
    step("deploy")
    try:
        yield stack.deploy()
    finally:
        step("teardown")
        stack.teardown()


def step(name: str) -> None:
    print(f"== release: {name}", flush=True)


def locust_args(options: argparse.Namespace, url: str) -> list[str]:
    args = ["-H", url, "-u", str(options.users), "-r", str(options.spawn_rate), "-t", options.run_time]
    args += ["--think-time", str(options.think_time), "--only-summary"]
    args += ["--min-ops", str(options.min_ops), "--max-p99-ms", str(options.max_p99_ms)]
    args += ["--max-fail-ratio", str(options.max_fail_ratio)]
    if options.small:
        args += ["--scrypt-params", json.dumps(wire_params(SMALL))]
    return args


def release(stack: Stack, options: argparse.Namespace) -> bool:
    """Every step in order; True when the release was promoted."""
    try:
        with deployed(stack) as url:
            step(f"wait for health of {url}")
            wait_for_health(url, options.health_timeout)
            step(f"distributed load test: {options.workers} workers")
            _, summary = run_load_test(options.workers, locust_args(options, url), options.results)
            passed = summary.exit_code == 0
    except (subprocess.CalledProcessError, TimeoutError, RuntimeError, OSError) as exc:
        print(f"release step failed: {exc}", flush=True)
        passed = False
    if passed:
        step("promote")
        stack.promote()
    return passed


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The load test and its criteria: docs/capacity.md's command for a 2-core node.
    parser.add_argument("--workers", type=int, default=2, help="Locust worker processes")
    parser.add_argument("--users", type=int, default=90)
    parser.add_argument("--spawn-rate", type=float, default=30)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument("--think-time", type=float, default=1.0)
    parser.add_argument("--min-ops", type=float, default=55)
    parser.add_argument("--max-p99-ms", type=float, default=1000)
    parser.add_argument("--max-fail-ratio", type=float, default=0)
    parser.add_argument("--small", action="store_true", help="N=1024 instead of the production set")
    parser.add_argument("--results", type=Path, default=ROOT / "loadtest" / "results")
    parser.add_argument("--health-timeout", type=float, default=60)
    where = parser.add_subparsers(dest="stack", required=True)
    local = where.add_parser("local", help="the loopback cluster")
    local.add_argument("--nodes", type=int, default=2)
    local.add_argument("--node-workers", type=int, default=1, help="hash workers per node")
    local.add_argument("--engine", default=None, help="the nodes' engine (default: theirs)")
    aws = where.add_parser("aws", help="the regional CloudFormation stack")
    aws.add_argument("--stack-name", required=True)
    aws.add_argument("--package-spec", required=True, help="what the instances pip install")
    aws.add_argument("--parameter", action="append", default=[], help="Key=Value for the template")
    aws.add_argument("--candidate", help="the image built for this release")
    aws.add_argument("--promote-to", action="append", default=[], help="a tag the candidate gets")
    return parser.parse_args(argv)


def stack_for(options: argparse.Namespace) -> Stack:
    if options.stack == "local":
        params = SMALL if options.small else PICL_PARAMS
        return LocalStack(options.nodes, options.node_workers, params, options.engine)
    parameters = dict(item.split("=", 1) for item in options.parameter)
    return AwsStack(
        options.stack_name, options.package_spec, parameters, options.candidate, options.promote_to
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    # A cancelled CI job (SIGTERM) still tears the stack down, through deployed()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    promoted = release(stack_for(options), options)
    print(f"release {__version__}: {'promoted' if promoted else 'not promoted'}", flush=True)
    return 0 if promoted else 1


if __name__ == "__main__":
    sys.exit(main())
