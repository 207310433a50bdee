"""Figures beside their criteria, each marked PASS or MISS, printed as one table; the load test's criteria.

The one place success criteria are judged: ``bench`` prints its figures with them, and the locustfile
and the release gate judge a load test by ``LoadTestCriteria``. Standard library only, so that a stock
Locust image can load this file beside the locustfile (``deploy/k8s/loadtest``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

PASS, MISS, NO_DATA = "PASS", "MISS", "n/a"


@dataclass(frozen=True, slots=True)
class Criterion:
    """A bound a figure must meet: at least (``>=``) or at most (``<=``) ``target``."""

    op: Literal[">=", "<="]
    target: float

    def mark(self, value: float) -> str:
        """PASS or MISS; n/a for a figure that could not be measured (NaN)."""
        if math.isnan(value):
            return NO_DATA
        met = value >= self.target if self.op == ">=" else value <= self.target
        return PASS if met else MISS


def at_least(target: float) -> Criterion:
    return Criterion(">=", target)


def at_most(target: float) -> Criterion:
    return Criterion("<=", target)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, with its criterion (if any) and the generator's cores beside it."""

    name: str
    value: float
    unit: str = ""
    criterion: Criterion | None = None
    generator_cores: float | None = None
    note: str = ""

    @property
    def mark(self) -> str:
        return self.criterion.mark(self.value) if self.criterion else ""

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "value": _json_number(self.value), "unit": self.unit}
        if self.criterion:
            row |= {"criterion": f"{self.criterion.op} {self.criterion.target:g}", "mark": self.mark}
        if self.generator_cores is not None:
            row["generator_cores"] = _json_number(round(self.generator_cores, 2))
        if self.note:
            row["note"] = self.note
        return row


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def show(value: float, unit: str = "") -> str:
    """A figure to read: thousands separated, fewer decimals the larger it is."""
    if math.isnan(value):
        return "-"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    space = "" if unit in ("", "%") or unit.startswith("/") else " "
    return f"{value:,.{digits}f}{space}{unit}"


def table(figures: list[Figure]) -> str:
    """The figures as aligned rows: name, value, criterion, mark, generator cores, note."""
    width = max((len(figure.name) for figure in figures), default=10) + 2
    lines = [f"{'figure':<{width}}{'value':>14}  {'criterion':<14}{'mark':<6}{'gen cores':>9}  note"]
    for figure in figures:
        criterion = ""
        if figure.criterion:
            criterion = f"{figure.criterion.op} {show(figure.criterion.target, figure.unit)}"
        cores = "" if figure.generator_cores is None else f"{figure.generator_cores:.2f}"
        lines.append(
            f"{figure.name:<{width}}{show(figure.value, figure.unit):>14}  {criterion:<14}"
            f"{figure.mark:<6}{cores:>9}  {figure.note}".rstrip()
        )
    return "\n".join(lines)


def missed(figures: list[Figure]) -> list[str]:
    """What each figure marked MISS missed, as ``name value, not op target``."""
    return [
        f"{figure.name} {show(figure.value, figure.unit)}, not {figure.criterion.op} "
        f"{show(figure.criterion.target, figure.unit)}"
        for figure in figures
        if figure.criterion and figure.mark == MISS
    ]


@dataclass(frozen=True, slots=True)
class LoadTestCriteria:
    """What a load test must show: good answers a second, the p99 of valid requests (0: any) and the
    share of failed checks."""

    min_ops: float = 0.0
    max_p99_ms: float = 0.0
    max_fail_ratio: float = 0.0

    @property
    def p99_criterion(self) -> Criterion | None:
        return at_most(self.max_p99_ms) if self.max_p99_ms else None

    def figures(self, *, ops: float, p99_ms: float, fail_ratio: float) -> list[Figure]:
        """The run's figures, each beside its criterion."""
        return [
            Figure("good answers", ops, "/s", at_least(self.min_ops)),
            Figure(
                "p99 of valid requests", p99_ms, "ms", at_most(self.max_p99_ms) if self.max_p99_ms else None
            ),
            Figure("failed checks", 100 * fail_ratio, "%", at_most(100 * self.max_fail_ratio)),
        ]


#: The release gate's criteria: docs/capacity.md's load test of one 2-core node behind nginx.
RELEASE_GATE = LoadTestCriteria(min_ops=55, max_p99_ms=1000, max_fail_ratio=0)
