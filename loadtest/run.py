"""Distributed Locust on this machine: one master and N workers in one command, each run's results kept.

    python -m loadtest.run --workers 4 -H URL -u 90 -r 30 -t 60s --min-ops 55 --max-p99-ms 1000

``--workers`` (2), ``--results`` (``loadtest/results``) and ``--master-port`` (a free one) are the
runner's; every other option goes to the master (Locust's, and the locustfile's criteria, which the
master sends on to the workers). The master judges the criteria; its exit status is the runner's.
Each run gets a folder under ``--results``: the CSV files with their full history, the HTML report,
the master's and each worker's log, ``summary.json`` and ``throughput.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from loadtest.plot import draw, number, read_history

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PREFIX = "locust"  # --csv prefix: locust_stats.csv, locust_stats_history.csv, ...
VERDICT = re.compile(r"success criteria (met|missed).*")


@dataclass(frozen=True, slots=True)
class Summary:
    """A run's figures, from the master's CSV files and log."""

    exit_code: int
    workers: int
    users: int
    requests: int
    failures: int
    requests_per_s: float
    hash_p99_ms: float
    verdict: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_folder(results: Path) -> Path:
    """A new folder named by the UTC time, with a counter when two runs start in the same second."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1000):
        folder = results / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder under {results}")


def master_command(workers: int, port: int, folder: Path, locust_args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--headless"]
    command += ["--expect-workers", str(workers), "--master-bind-host", "127.0.0.1"]
    command += ["--master-bind-port", str(port), "--csv", str(folder / PREFIX), "--csv-full-history"]
    command += ["--html", str(folder / "report.html")]
    if not any(arg.startswith("--expect-workers-max-wait") for arg in locust_args):
        command += ["--expect-workers-max-wait", "60"]  # a worker that never comes must not hang the run
    return command + locust_args


def worker_command(port: int) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    return [*command, "--master-host", "127.0.0.1", "--master-port", str(port)]


def tee(stream: IO[str], log: Path) -> str:
    """Copy the master's output to ours and to its log; return the verdict line."""
    verdict = ""
    with log.open("w") as file:
        for line in stream:
            sys.stdout.write(line)
            file.write(line)
            found = VERDICT.search(line)
            verdict = found.group(0) if found else verdict
    sys.stdout.flush()
    return verdict


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summarize(folder: Path, exit_code: int, workers: int, verdict: str) -> Summary:
    with (folder / f"{PREFIX}_stats.csv").open(newline="") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    with (folder / f"{PREFIX}_stats_history.csv").open(newline="") as file:
        users = max((int(row["User Count"]) for row in csv.DictReader(file)), default=0)
    total = rows["Aggregated"]
    hash_row = rows.get("hash", {})
    return Summary(
        exit_code=exit_code,
        workers=workers,
        users=users,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        requests_per_s=round(float(total["Requests/s"]), 1),
        hash_p99_ms=number(hash_row.get("99%", "")),
        verdict=verdict,
    )


def run(workers: int, locust_args: list[str], results: Path, port: int | None = None) -> tuple[Path, Summary]:
    """Start the workers and the master, wait for the master, keep its results; the master's status."""
    folder = run_folder(results)
    port = port or free_port()
    started = []
    try:
        for index in range(workers):
            with (folder / f"worker-{index}.log").open("wb") as log:
                started.append(subprocess.Popen(worker_command(port), stdout=log, stderr=subprocess.STDOUT))
        master = subprocess.Popen(
            master_command(workers, port, folder, locust_args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(master)
        assert master.stdout is not None
        verdict = tee(master.stdout, folder / "master.log")
        exit_code = master.wait()
    finally:
        # The master tells its workers to quit; these are the ones it never reached.
        deadline = time.monotonic() + 10
        for process in reversed(started):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stop(process)
    if not (folder / f"{PREFIX}_stats.csv").exists():  # the master never ran a test (bad options)
        return folder, Summary(exit_code, workers, 0, 0, 0, 0.0, float("nan"), verdict)
    summary = summarize(folder, exit_code, workers, verdict)
    (folder / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    samples = read_history(folder / f"{PREFIX}_stats_history.csv")
    if samples:
        draw(samples, folder / "throughput.png", f"{workers} workers, {summary.users} users")
    return folder, summary


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Run loadtest/locustfile.py as one master and N local workers; "
        "other options go to the master.",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--results", type=Path, default=Path("loadtest/results"), help="results folder")
    parser.add_argument("--master-port", type=int, default=None, help="the master's port (default: free)")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    options, locust_args = parse(sys.argv[1:] if argv is None else argv)
    if options.workers < 1:
        raise SystemExit("--workers must be at least 1")
    # A SIGTERM (CI cancelling the job) still stops the workers, through run()'s finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder, summary = run(options.workers, locust_args, options.results, options.master_port)
    print(
        f"distributed run: {summary.workers} workers, {summary.users} users, "
        f"{summary.requests_per_s} requests/s, p99 {summary.hash_p99_ms:.0f} ms (valid requests), "
        f"{summary.failures} failed of {summary.requests}; exit status {summary.exit_code}",
        f"results in {folder}",
        sep="; ",
        flush=True,
    )
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
