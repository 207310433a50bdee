"""Figures beside their criteria, each marked PASS or MISS, printed as one table."""

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
    space = "" if unit in ("", "%") else " "
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
