"""The Grafana dashboard (deploy/grafana/scrypt-helper.json): its panels' queries, and a matplotlib
picture of them drawn from a live Prometheus (what Grafana would show, for docs/operations.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.prometheus import LocalPrometheus

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "scrypt-helper.json"


@dataclass(frozen=True, slots=True)
class Query:
    panel: str
    unit: str
    expr: str
    legend: str


def panel_queries(rate_interval: str, path: Path = DASHBOARD) -> list[Query]:
    """Every target of every panel, with Grafana's ``$__rate_interval`` set to ``rate_interval``."""
    dashboard = json.loads(path.read_text())
    return [
        Query(
            panel["title"],
            panel["fieldConfig"]["defaults"].get("unit", ""),
            target["expr"].replace("$__rate_interval", rate_interval),
            target.get("legendFormat", ""),
        )
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend filled from a series' labels."""
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def draw(
    prometheus: LocalPrometheus,
    output: Path,
    *,
    start: float,
    end: float,
    step: float = 1.0,
    rate_interval: str = "5s",
    path: Path = DASHBOARD,
) -> dict[str, int]:
    """Draw every panel over Unix times [start, end] into ``output`` (PNG); returns series per panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = panel_queries(rate_interval, path)
    titles = list(dict.fromkeys(q.panel for q in queries))
    rows = (len(titles) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(13, 3.2 * rows), squeeze=False)
    drawn = dict.fromkeys(titles, 0)
    for index, title in enumerate(titles):
        ax = axes[index // 2][index % 2]
        for query in (q for q in queries if q.panel == title):
            for series in prometheus.query_range(query.expr, start, end, step):
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                ax.plot(*zip(*points, strict=True), label=legend(query.legend, series["metric"]), lw=1.2)
                drawn[title] += 1
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(next(q.unit for q in queries if q.panel == title), fontsize=8)
        ax.set_xlim(0, end - start)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("seconds", fontsize=8)
    for ax in axes.flat[len(titles) :]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(output, dpi=90)
    plt.close(figure)
    return drawn
