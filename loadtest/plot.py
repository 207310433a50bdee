"""Throughput and p99 over time, drawn from a Locust run's ``--csv-full-history`` file."""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Sample:
    """One row of the history: seconds since the first row, requests/s since the previous row, p99 ms."""

    seconds: float
    throughput: float
    p99_ms: float


def number(text: str) -> float:
    return math.nan if text in ("", "N/A") else float(text)


def read_history(path: Path, p99_of: str = "hash") -> list[Sample]:
    """Throughput of every request (``Aggregated`` rows) and the p99 Locust kept for ``p99_of``.

    Throughput comes from the growth of the total count between rows, not from Locust's rolling
    ``Requests/s``, so that each point covers its own interval only.
    """
    totals: dict[int, float] = {}
    p99: dict[int, float] = {}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            stamp = int(row["Timestamp"])
            if row["Name"] == "Aggregated":
                totals[stamp] = number(row["Total Request Count"])
            elif row["Name"] == p99_of:
                p99[stamp] = number(row["99%"])
    stamps = sorted(totals)
    samples = []
    for previous, stamp in itertools.pairwise(stamps):
        rate = (totals[stamp] - totals[previous]) / (stamp - previous)
        samples.append(Sample(stamp - stamps[0], rate, p99.get(stamp, math.nan)))
    return samples


def draw(samples: list[Sample], png: Path, title: str) -> Path:
    """A PNG of throughput (left axis) and p99 (right axis) against time."""
    import matplotlib  # the bench/dev extra; imported here so that reading a history needs none

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, left = pyplot.subplots(figsize=(8, 4))
    seconds = [s.seconds for s in samples]
    left.plot(seconds, [s.throughput for s in samples], color="tab:blue", label="requests/s")
    left.set_xlabel("seconds")
    left.set_ylabel("requests/s", color="tab:blue")
    right = left.twinx()
    right.plot(seconds, [s.p99_ms for s in samples], color="tab:red", label="p99 ms (valid requests)")
    right.set_ylabel("p99 ms (valid requests, last 10 s)", color="tab:red")
    left.set_title(title)
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    pyplot.close(figure)
    return png
