"""deploy/grafana/scrypt-helper.json: a dashboard Grafana imports, covering what operators watch, whose
queries select job scrypt-helper and only series a node exports (tests/cluster/test_monitoring.py
runs every query against a live Prometheus)."""

from __future__ import annotations

import json
import re

from harness.dashboard import DASHBOARD, panel_queries
from tests.deploy.test_prometheus import exported_series

# What the dashboard must show, as a word of some panel's title.
COVERED = (
    "hashes per second",
    "latency",
    "queue depth",
    "queue wait",
    "refusals",
    "rate-limit store",
    "batch",
)


def test_the_dashboard_is_an_importable_grafana_model():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["name"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_the_panels_cover_what_operators_watch():
    titles = " | ".join(panel["title"].lower() for panel in json.loads(DASHBOARD.read_text())["panels"])
    assert [topic for topic in COVERED if topic not in titles] == []
    assert "p50" in titles
    assert "p99" in titles


def test_every_query_selects_the_job_and_uses_only_exported_series():
    exported = exported_series()
    for query in panel_queries("5m"):
        selectors = re.findall(r"\b(scrypt_helper_\w+)\{([^}]*)\}", query.expr)
        assert selectors, query.expr
        for name, labels in selectors:
            assert name in exported, f"{query.panel}: {name} is not exported by a node"
            assert 'job="scrypt-helper"' in labels, f"{query.panel}: {query.expr}"
        assert "$" not in query.expr, query.expr
