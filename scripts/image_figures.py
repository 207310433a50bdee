#!/usr/bin/env python3
"""Measure the image on this machine; run with .venv/bin/python (podman needed).

Prints the CPU; the image's size (and the base's); the time of a build that changes nothing (the
layer cache's cost); seconds from ``podman run`` to a 200 from /__lbheartbeat__; the RSS of the
container's processes at idle; and hashes/s of the native engine inside the container against the
very wheel the image was built from, run outside it, in alternate rounds on the same threads.

    .venv/bin/python scripts/image_figures.py                  # builds IMAGE:test first
    .venv/bin/python scripts/image_figures.py --rounds 5 --seconds 10
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ lives in the checkout, not in the package

from harness.image import (
    BASE,
    TEST_TAG,
    Container,
    build_image,
    inspect_image,
    run_once,
    run_podman,
    untag,
)
from scrypt_helper.bench.overload import cpu_model

# Hashes/s of the native engine on the production parameters: argv = [wheel dir or "", threads, seconds].
MEASURE = """
import json, sys
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
import scrypt_helper
from scrypt_helper.bench.engine import measure_engine
from scrypt_helper.engines import create_engine
from scrypt_helper.engines.vectors import PICL_PARAMS
threads, seconds = int(sys.argv[2]), float(sys.argv[3])
figure = measure_engine(create_engine("native"), PICL_PARAMS, threads=threads, seconds=seconds)
print(json.dumps({"hashes_per_second": figure.hashes_per_second, "module": scrypt_helper.__file__}))
"""


def megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def builder_wheel(into: Path) -> Path:
    """The wheel the image's builder made (a cached build of that stage), unpacked into ``into``."""
    tag = "localhost/scrypt-helper-figures:builder"
    build_image(tag, target="builder")
    created = run_podman("create", tag, "true").stdout.strip()  # never started: a command is all it needs
    try:
        run_podman("cp", f"{created}:/wheels", str(into))
    finally:
        run_podman("rm", created, check=False)
        untag(tag)
    (wheel,) = (into / "wheels").glob("scrypt_helper-*.whl")
    unpacked = into / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    return unpacked


def hashes_per_second(image: str, unpacked: Path | None, threads: int, seconds: float) -> float:
    """One measurement: in a container of ``image`` if ``unpacked`` is None, else of that wheel here."""
    arguments = [str(threads), str(seconds)]
    if unpacked is None:
        done = run_once(image, "-c", MEASURE, "", *arguments, entrypoint="python3", timeout=seconds * 10 + 60)
    else:
        done = subprocess.run(
            [sys.executable, "-I", "-c", MEASURE, str(unpacked), *arguments],
            capture_output=True,
            text=True,
            timeout=seconds * 10 + 60,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    result = json.loads(done.stdout.splitlines()[-1])
    if unpacked is not None and not result["module"].startswith(str(unpacked)):
        raise RuntimeError(f"measured {result['module']}, not the builder's wheel")
    return result["hashes_per_second"]


def start_to_ready(image: str, env: dict[str, str]) -> tuple[float, int]:
    """Seconds from ``podman run`` to a ready /__lbheartbeat__, and the RSS after 3 s idle."""
    container = Container(image, env=env).start()
    try:
        ready = container.wait_ready()
        time.sleep(3)
        return ready, container.rss_bytes()
    finally:
        container.__exit__(None, None, None)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--image", default=TEST_TAG, help=f"image to measure (default {TEST_TAG}, built first)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternate rounds of hashes/s (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per hashes/s measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads (default: CPUs)")
    args = parser.parse_args()

    print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs)")
    if args.image == TEST_TAG:
        began = time.monotonic()
        build_image(args.image)
        first = time.monotonic() - began
        began = time.monotonic()
        build_image(args.image)
        print(f"build: {first:.1f} s; again with nothing changed: {time.monotonic() - began:.1f} s")
    size, base = inspect_image(args.image)["Size"], inspect_image(BASE)["Size"]
    print(
        f"image: {megabytes(size)} ({megabytes(base)} of it the base {BASE}, {megabytes(size - base)} ours)"
    )

    for workers in sorted({"1", str(args.threads)}, key=int):
        runs = [start_to_ready(args.image, {"SCRYPT_HELPER_WORKERS": workers}) for _ in range(3)]
        ready = statistics.median(seconds for seconds, _ in runs)
        rss = statistics.median(rss for _, rss in runs)
        print(
            f"{workers} worker(s): ready {ready:.2f} s after podman run (median of 3); "
            f"idle RSS {rss / 2**20:.0f} MiB"
        )

    with tempfile.TemporaryDirectory() as folder:
        unpacked = builder_wheel(Path(folder))
        inside, outside = [], []
        for _ in range(args.rounds):
            inside.append(hashes_per_second(args.image, None, args.threads, args.seconds))
            outside.append(hashes_per_second(args.image, unpacked, args.threads, args.seconds))
    ratio = statistics.median(inside) / statistics.median(outside)
    print(
        f"native engine, {args.threads} threads, N=65536: container {statistics.median(inside):.1f} h/s, "
        f"same wheel outside {statistics.median(outside):.1f} h/s (medians of {args.rounds}): {ratio:.1%}"
    )
    print(
        f"  container rounds {[round(x, 1) for x in inside]}, outside rounds {[round(x, 1) for x in outside]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
