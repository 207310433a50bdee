"""deploy/prometheus/alerts.yml: valid for promtool, fires on synthetic series as intended, and refers
only to metrics the service really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.prometheus import format_duration, parse_duration, render_config, render_rules
from scrypt_helper.observability.metrics import Metrics

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
EXPECTED = {
    "ScryptHelperNodeDown",
    "ScryptHelperAllNodesDown",
    "ScryptHelperServerErrors",
    "ScryptHelperOverloaded",
    "ScryptHelperQueueSaturated",
    "ScryptHelperHashLatencyHigh",
    "ScryptHelperRequestLatencyHigh",
    "ScryptHelperRedisDown",
    "ScryptHelperWorkersDead",
    "ScryptHelperAbuseBlocksHigh",
}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def exported_series() -> set[str]:
    """Every series name a node exports (counters as _total, histograms as _bucket/_sum/_count)."""
    names = {"up"}
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        elif family.type == "info":
            names.add(f"{family.name}_info")
        else:
            names.add(family.name)
    return names


def test_the_rules_are_complete_and_use_only_real_metrics():
    found = rules()
    assert {rule["alert"] for rule in found} == EXPECTED
    exported = exported_series()
    for rule in found:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+m", rule["for"]), rule["alert"]
        for name in re.findall(r"\b(scrypt_helper_\w+|up)\b(?=\{|\s|\))", rule["expr"]):
            assert name in exported, f"{rule['alert']} uses {name}, which no node exports"


@needs_promtool
def test_promtool_check_rules():
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def alert(name: str, severity: str, summary: str, description: str, **labels: str) -> dict:
    return {
        "exp_labels": {"severity": severity, **labels},
        "exp_annotations": {"summary": summary, "description": description},
    }


def description_of(name: str) -> str:
    (rule,) = [r for r in rules() if r["alert"] == name]
    return rule["annotations"]["description"]


@needs_promtool
def test_promtool_unit_tests_fire_and_stay_quiet_as_intended(tmp_path: Path):
    job = {"job": "scrypt-helper"}
    a = {**job, "instance": "a:9100"}
    b = {**job, "instance": "b:9100"}

    def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
        inside = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{inside}}}", "values": values}

    tests = [
        {
            # Node a stops answering scrapes; b is fine.
            "interval": "1m",
            "input_series": [series("up", a, "1 1 0x5"), series("up", b, "1x7")],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "ScryptHelperNodeDown",
                    "exp_alerts": [
                        alert(
                            "ScryptHelperNodeDown",
                            "warning",
                            "scrypt-helper node a:9100 is down",
                            description_of("ScryptHelperNodeDown").replace(
                                "{{ $labels.instance }}", "a:9100"
                            ),
                            **a,
                        )
                    ],
                },
                {"eval_time": "5m", "alertname": "ScryptHelperAllNodesDown", "exp_alerts": []},
            ],
        },
        {
            # 1 in 4 hash requests refused with 503 for 10 minutes; queue at 9/10 on a.
            "interval": "1m",
            "input_series": [
                series(
                    "scrypt_helper_requests_total",
                    {**a, "route": "/", "method": "POST", "status": "200"},
                    "0+3x15",
                ),
                series(
                    "scrypt_helper_requests_total",
                    {**a, "route": "/", "method": "POST", "status": "503"},
                    "0+1x15",
                ),
                series("scrypt_helper_queue_depth", a, "9x15"),
                series("scrypt_helper_queue_capacity", a, "10x15"),
                series("scrypt_helper_queue_depth", b, "1x15"),
                series("scrypt_helper_queue_capacity", b, "10x15"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "12m",
                    "alertname": "ScryptHelperOverloaded",
                    "exp_alerts": [
                        alert(
                            "ScryptHelperOverloaded",
                            "warning",
                            "25% of hash requests are refused with 503",
                            description_of("ScryptHelperOverloaded"),
                        )
                    ],
                },
                {
                    "eval_time": "12m",
                    "alertname": "ScryptHelperQueueSaturated",
                    "exp_alerts": [
                        alert(
                            "ScryptHelperQueueSaturated",
                            "warning",
                            "scrypt-helper queue on a:9100 is 90% full",
                            description_of("ScryptHelperQueueSaturated"),
                            instance="a:9100",
                        )
                    ],
                },
                # 503s are load shedding, not server errors.
                {"eval_time": "12m", "alertname": "ScryptHelperServerErrors", "exp_alerts": []},
            ],
        },
        {
            # a lost its Redis; b never had one (redis_up 0, no failover): only a alerts.
            # b's workers went from 4 to 3.
            "interval": "1m",
            "input_series": [
                series("scrypt_helper_redis_up", a, "1 1 0x8"),
                series("scrypt_helper_redis_failovers_total", a, "0 0 1x8"),
                series("scrypt_helper_redis_up", b, "0x10"),
                series("scrypt_helper_redis_failovers_total", b, "0x10"),
                series("scrypt_helper_workers", a, "4x10"),
                series("scrypt_helper_workers", b, "4 4 3x8"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "6m",
                    "alertname": "ScryptHelperRedisDown",
                    "exp_alerts": [
                        alert(
                            "ScryptHelperRedisDown",
                            "warning",
                            "a:9100 cannot reach Redis",
                            description_of("ScryptHelperRedisDown"),
                            **a,
                        )
                    ],
                },
                {
                    "eval_time": "6m",
                    "alertname": "ScryptHelperWorkersDead",
                    "exp_alerts": [
                        alert(
                            "ScryptHelperWorkersDead",
                            "critical",
                            "Hash workers died on b:9100",
                            description_of("ScryptHelperWorkersDead"),
                            **b,
                        )
                    ],
                },
            ],
        },
    ]
    spec = tmp_path / "alerts.test.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(spec)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the live test's rendering of the shipped files (harness/prometheus.py) ------------------------------

CONFIG = ALERTS.parent / "prometheus.yml"


@needs_promtool
def test_promtool_check_config_with_its_rules():
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert f"{len(EXPECTED)} rules found" in result.stdout


def test_the_scrape_job_is_the_one_the_rules_select():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "scrypt-helper"
    assert job["metrics_path"] == "/metrics"


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("1h", 3600), ("1h30m", 5400), ("15s", 15), ("250ms", 0.25)]
)
def test_durations_parse_and_format_back(text: str, seconds: float):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_rendered_rules_divide_every_for_and_window_and_change_nothing_else():
    factor = 60
    shipped = rules()
    rendered = [
        r for g in yaml.safe_load(render_rules(ALERTS.read_text(), factor))["groups"] for r in g["rules"]
    ]
    assert [r["alert"] for r in rendered] == [r["alert"] for r in shipped]
    windows = re.compile(r"\[([0-9a-z]+)\]")
    for before, after in zip(shipped, rendered, strict=True):
        assert parse_duration(after["for"]) == parse_duration(before["for"]) / factor
        old, new = windows.findall(before["expr"]), windows.findall(after["expr"])
        assert [parse_duration(w) / factor for w in old] == [parse_duration(w) for w in new]
        assert windows.sub("[]", before["expr"]) == windows.sub("[]", after["expr"])
        rest = {k: v for k, v in before.items() if k not in ("for", "expr")}
        assert rest == {k: v for k, v in after.items() if k not in ("for", "expr")}
    assert any(windows.search(r["expr"]) for r in shipped)


@needs_promtool
def test_rendered_config_and_rules_are_valid_for_promtool(tmp_path: Path):
    (tmp_path / "prometheus.yml").write_text(
        render_config(CONFIG.read_text(), scrape_interval=1, evaluation_interval=0.5)
    )
    (tmp_path / "alerts.yml").write_text(render_rules(ALERTS.read_text(), 60))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = yaml.safe_load((tmp_path / "prometheus.yml").read_text())["global"]
    assert rendered == {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "500ms"}
