#!/usr/bin/env python3
"""Release gate: run the release's image on a load-test stack, wait for health, run the distributed
load test with the success criteria, tear the stack down, and promote that same image only when every
criterion was met.

    .venv/bin/python scripts/release.py local [--image REF] [--promote-to TAG ...]
    .venv/bin/python scripts/release.py aws --stack-name NAME --image IMAGE@sha256:... \\
        --promote-to IMAGE:1.2.3 --parameter VpcId=vpc-... ...

The same steps run in both; only the stack differs. ``local`` runs the image (default
``IMAGE:test``, built from this checkout by ``harness.image`` if absent) as ``--nodes`` containers
sharing a local Redis behind nginx from ``deploy/nginx``, and promotes by tagging the image that was
tested (``podman tag``). ``aws`` deploys ``deploy/aws/scrypt-helper.yaml`` with fixed-size load-test
parameters and the image's digest, and promotes by tagging that digest in its registry (``docker
buildx imagetools create``). Nothing is rebuilt after the load test. The criteria default to the
load-test command of ``docs/capacity.md``. The last line says ``promoted`` or ``not promoted``; the
exit status is 0 only when promoted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ and loadtest/ live in the checkout, not in the package

import httpx

from harness.cluster import LocalNginx
from harness.image import TEST_TAG, Container, build_image, image_exists, inspect_image, run_podman
from loadtest.run import run as run_load_test
from scrypt_helper import __version__
from scrypt_helper.bench.criteria import RELEASE_GATE
from scrypt_helper.bench.local_servers import LocalRedis
from scrypt_helper.core.config import allowed_params_json
from scrypt_helper.engines import ScryptParams
from scrypt_helper.engines.vectors import PICL_PARAMS
from scrypt_helper_client import wire_params

TEMPLATE = ROOT / "deploy" / "aws" / "scrypt-helper.yaml"
SMALL = ScryptParams(salt=b"scrypt-helper-release", n=1024, r=8, p=1, buflen=32)
# A load-test stack keeps its size: autoscaling during the run would blur the capacity it measures.
AWS_LOAD_TEST_PARAMETERS = {"MinSize": "2", "MaxSize": "2", "InstanceType": "c7i.large"}
DIGEST_REFERENCE = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")
# What a failed step raises: the release stops there, unpromoted (the stack is still torn down).
STEP_FAILURES = (
    subprocess.CalledProcessError,
    subprocess.TimeoutExpired,
    TimeoutError,
    RuntimeError,
    OSError,
    ValueError,
)
# Every simulated user comes from 127.0.0.1: the abuse rules would ban the load generator, and a
# per-client connection cap would refuse it.
LOCAL_CONNECTIONS_PER_CLIENT = 100_000


class Stack(Protocol):
    """Where the release is load-tested: deployed, torn down, and the place its image is promoted."""

    def deploy(self) -> str:
        """Bring the stack up; its base URL."""
        ...

    def teardown(self) -> None: ...

    def promote(self) -> None: ...


class LocalStack:
    """The image as ``nodes`` containers, each on its own port, sharing one local Redis, behind
    nginx from deploy/nginx; promotion tags the very image that ran."""

    def __init__(
        self,
        image: str,
        nodes: int,
        workers: int,
        params: ScryptParams,
        engine: str | None,
        promote_to: list[str],
        *,
        build: bool = False,
    ) -> None:
        self.image = image
        self.nodes = nodes
        self.build = build
        self.promote_to = promote_to
        self.env = {
            "SCRYPT_HELPER_HOST": "127.0.0.1",
            "SCRYPT_HELPER_WORKERS": str(workers),
            "SCRYPT_HELPER_ALLOWED_PARAMS": allowed_params_json(params),
            "SCRYPT_HELPER_TRUSTED_PROXIES": "1",
            "SCRYPT_HELPER_RULES": "",
            "SCRYPT_HELPER_MAX_CONNECTIONS_PER_CLIENT": str(LOCAL_CONNECTIONS_PER_CLIENT),
        }
        if engine:
            self.env["SCRYPT_HELPER_ENGINE"] = engine
        self.image_id: str | None = None
        self.digest: str | None = None
        self.redis: LocalRedis | None = None
        self.containers: list[Container] = []
        self.nginx: LocalNginx | None = None

    def resolve(self) -> None:
        """Find the image (building it from this checkout where asked, or where the default is
        absent) and fix the id that every node runs and promotion tags."""
        if self.build or (self.image == TEST_TAG and not image_exists(self.image)):
            if "@" in self.image:
                raise ValueError(f"cannot build {self.image}: a digest names an image that exists")
            step(f"build {self.image}")
            build_image(self.image)
        if not image_exists(self.image):
            raise RuntimeError(f"no image {self.image} (build it with: python -m harness.image build)")
        found = inspect_image(self.image)
        self.image_id, self.digest = found["Id"], found["Digest"]
        print(f"candidate: {self.image} (id sha256:{self.image_id}, digest {self.digest})", flush=True)

    def deploy(self) -> str:
        self.resolve()
        assert self.image_id is not None
        self.redis = LocalRedis().start()
        env = {**self.env, "SCRYPT_HELPER_REDIS_URL": self.redis.url}
        run = f"{os.getpid()}-{time.monotonic_ns()}"
        self.containers = [
            Container(self.image_id, env=env, name=f"scrypt-helper-release-{run}-{index}")
            for index in range(self.nodes)
        ]
        for container in self.containers:
            container.start()
        for container in self.containers:
            container.wait_ready()
        ports = [int(container.env["SCRYPT_HELPER_PORT"]) for container in self.containers]
        self.nginx = LocalNginx(ports).start()
        return self.nginx.url

    def teardown(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx.cleanup()
        with ThreadPoolExecutor(max(1, len(self.containers))) as pool:
            list(pool.map(stop_and_remove, self.containers))
        if self.redis is not None:
            self.redis.stop()

    def promote(self) -> None:
        """Tag the image that was load-tested, by its id: the promoted tags name the same image."""
        assert self.image_id is not None
        for tag in self.promote_to:
            run_podman("tag", self.image_id, tag)
            if inspect_image(tag)["Id"] != self.image_id:
                raise RuntimeError(f"{tag} does not name the tested image sha256:{self.image_id}")
            print(f"promoted {self.digest} (id sha256:{self.image_id}) to {tag}", flush=True)


def stop_and_remove(container: Container) -> None:
    """Stop a node (it drains) and remove its container, even when stopping failed."""
    try:
        container.stop()
    finally:
        container.remove()


class AwsStack:
    """The regional CloudFormation stack with load-test parameters, its instances running the image
    by digest; promotion tags that digest in the registry."""

    def __init__(self, name: str, image: str, parameters: dict[str, str], promote_to: list[str]) -> None:
        if not DIGEST_REFERENCE.fullmatch(image):
            raise ValueError(f"{image} is not an image by digest (IMAGE@sha256:...)")
        self.name = name
        self.image = image
        self.parameters = {**AWS_LOAD_TEST_PARAMETERS, **parameters, "Image": image}
        self.promote_to = promote_to

    def deploy_command(self) -> list[str]:
        overrides = [f"{key}={value}" for key, value in self.parameters.items()]
        return [
            *("aws", "cloudformation", "deploy", "--stack-name", self.name),
            *("--template-file", str(TEMPLATE), "--capabilities", "CAPABILITY_IAM"),
            *("--parameter-overrides", *overrides),
        ]

    def deploy(self) -> str:
        print(f"candidate: {self.image}", flush=True)
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

    def promote_command(self) -> list[str]:
        """New tags on the tested digest's manifest in its registry: nothing is pulled or rebuilt."""
        tags = [arg for tag in self.promote_to for arg in ("--tag", tag)]
        return ["docker", "buildx", "imagetools", "create", *tags, self.image]

    def promote(self) -> None:
        if not self.promote_to:
            return
        subprocess.run(self.promote_command(), check=True)
        for tag in self.promote_to:
            print(f"promoted {self.image} to {tag}", flush=True)


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
    except STEP_FAILURES as exc:
        print(f"release step failed: {exc}", flush=True)
        return False
    if not passed:
        return False
    step("promote")
    try:
        stack.promote()
    except STEP_FAILURES as exc:
        print(f"release step failed: {exc}", flush=True)
        return False
    return True


def digest_reference(value: str) -> str:
    """An argparse type: an image named by digest."""
    if not DIGEST_REFERENCE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not IMAGE@sha256:<64 hex digits>")
    return value


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The load test and its criteria: docs/capacity.md's command for a 2-core node.
    parser.add_argument("--workers", type=int, default=2, help="Locust worker processes")
    parser.add_argument("--users", type=int, default=90)
    parser.add_argument("--spawn-rate", type=float, default=30)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument("--think-time", type=float, default=1.0)
    parser.add_argument("--min-ops", type=float, default=RELEASE_GATE.min_ops)
    parser.add_argument("--max-p99-ms", type=float, default=RELEASE_GATE.max_p99_ms)
    parser.add_argument("--max-fail-ratio", type=float, default=RELEASE_GATE.max_fail_ratio)
    parser.add_argument("--small", action="store_true", help="N=1024 instead of the production set")
    parser.add_argument("--results", type=Path, default=ROOT / "loadtest" / "results")
    parser.add_argument("--health-timeout", type=float, default=60)
    where = parser.add_subparsers(dest="stack", required=True)
    local = where.add_parser("local", help="the image as containers behind nginx, on this machine")
    local.add_argument("--image", default=TEST_TAG, help="the image to test (a tag, id or IMAGE@sha256:...)")
    local.add_argument("--build", action="store_true", help="build --image from this checkout first")
    local.add_argument("--nodes", type=int, default=2)
    local.add_argument("--node-workers", type=int, default=1, help="hash workers per node")
    local.add_argument("--engine", default=None, help="the nodes' engine (default: theirs)")
    local.add_argument("--promote-to", action="append", default=[], help="a tag the tested image gets")
    aws = where.add_parser("aws", help="the regional CloudFormation stack")
    aws.add_argument("--stack-name", required=True)
    aws.add_argument(
        "--image", required=True, type=digest_reference, help="what the instances run: IMAGE@sha256:..."
    )
    aws.add_argument("--parameter", action="append", default=[], help="Key=Value for the template")
    aws.add_argument("--promote-to", action="append", default=[], help="a tag the tested digest gets")
    return parser.parse_args(argv)


def stack_for(options: argparse.Namespace) -> Stack:
    if options.stack == "local":
        params = SMALL if options.small else PICL_PARAMS
        return LocalStack(
            options.image,
            options.nodes,
            options.node_workers,
            params,
            options.engine,
            options.promote_to,
            build=options.build,
        )
    parameters = dict(item.split("=", 1) for item in options.parameter)
    return AwsStack(options.stack_name, options.image, parameters, options.promote_to)


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    # A cancelled CI job (SIGTERM) still tears the stack down, through deployed()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    promoted = release(stack_for(options), options)
    print(f"release {__version__}: {'promoted' if promoted else 'not promoted'}", flush=True)
    return 0 if promoted else 1


if __name__ == "__main__":
    sys.exit(main())
