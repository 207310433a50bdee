"""The bench command runs at a tiny size and writes its JSON report and PNG plots."""

from __future__ import annotations

import json
import tempfile

import pytest

from scrypt_helper.bench.local_servers import LocalServer
from tests.measuring import run_measurement


def test_bench_tiny_writes_json_and_plots(tmp_path):
    """On the default engine, whose tiny hashes make a queue longer than the node takes connections."""
    flags = [
        "--tiny",
        "--seconds",
        "0.5",
        "--concurrency",
        "1,2",
        "--rss-requests",
        "20",
    ]
    done = run_measurement("scrypt_helper", "bench", *flags, out=tmp_path)
    (path,) = tmp_path.glob("bench-*-tiny.json")
    report = json.loads(path.read_text())
    assert report["params"]["N"] == 1024
    assert report["engine"]["hashes_per_second_1_thread"] > 0
    assert [row["concurrency"] for row in report["http"]] == [1, 2]
    assert all(row["ok"] > 0 and row["failed"] == 0 for row in report["http"])
    assert report["overload"]["failed"] == 0
    assert report["rss"]["requests"] >= 20
    for name in ("throughput", "latency"):
        assert path.with_name(f"{path.stem}-{name}.png").read_bytes().startswith(b"\x89PNG")
    assert "clients" in done.stdout


def test_bench_limits_runs_small_and_reports_memory_and_rate(tmp_path):
    flags = ["--requests", "2000", "--max-tracked-keys", "100", "--flood-connections", "8"]
    done = run_measurement("scrypt_helper", "bench", "limits", *flags, out=tmp_path)
    report = json.loads((tmp_path / "bench-limits.json").read_text())
    assert report["requests"] == 2000
    assert report["responses"] == {"200": 2000}
    assert len(report["rate_per_tenth"]) == len(report["node_cpu_us_per_request_per_tenth"]) == 10
    assert all(rate > 0 for rate in report["rate_per_tenth"])
    assert report["rss_mib"]["peak"] >= report["rss_mib"]["ready"] > 0
    assert min(report["alternating"]["median_rate"].values()) > 0
    assert report["guard_cpu_us_per_request"]["start"] > 0
    assert report["guard_cpu_us_per_request"]["end"] > 0
    assert "rate fall, first tenth to last" in done.stdout


@pytest.mark.parametrize(
    ("mode", "flags", "report"),
    [
        (
            "abuse",
            ["--tiny", "--engine", "hashlib", "--flood-connections", "4"],
            "bench-abuse-hashlib-tiny.json",
        ),
        ("parser", ["--engine", "hashlib"], "bench-parser.json"),
        ("batching", ["--tiny", "--engine", "hashlib", "--workers", "1"], "bench-batching-hashlib-tiny.json"),
        # Its flood and batching parts are the flood and batching modes' own measurements.
        (
            "overload",
            ["--tiny", "--engine", "hashlib", "--workers", "1", "--parts", "open-loop,refusals"],
            "bench-overload-hashlib-tiny.json",
        ),
        (
            "flood",
            ["--tiny", "--engine", "hashlib", "--node", "processes=2,workers=2,redis_url=local"],
            "bench-flood-hashlib-tiny.json",
        ),
    ],
)
def test_each_other_mode_runs_to_its_report_on_tiny_parameters(tmp_path, mode, flags, report):
    """Every mode once, briefly: it measures, prints its table and writes its JSON report."""
    run_measurement("scrypt_helper", "bench", mode, *flags, "--seconds", "0.5", out=tmp_path)
    written = json.loads((tmp_path / report).read_text())
    assert written
    if mode == "abuse":  # even a short run measures the normal client beside the flood
        assert written["flood"]["normal_during_flood"]["ok"] > 0
        assert written["ban_propagation"]["trials"] == 5  # --tiny's, not a full run's 20
    if mode == "batching":  # one turn each per client count on --tiny, every count measured
        assert [row["clients"] for row in written["rows"]] == [1, 2, 4, 16, 64]
        assert all(row[name]["ok_per_second"] > 0 for row in written["rows"] for name in ("none", "window"))


def test_a_local_server_that_never_answers_says_why_and_keeps_no_log_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = LocalServer(queue_size="many")
    with pytest.raises(RuntimeError, match="--queue-size"):
        server.start()
    assert list(tmp_path.iterdir()) == []
    assert "--queue-size" in server.logs()
