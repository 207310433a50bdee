"""The bench command runs at a tiny size and writes its JSON report and PNG plots."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_tiny_writes_json_and_plots(tmp_path):
    flags = [
        "--tiny",
        "--engine",
        "hashlib",
        "--seconds",
        "0.5",
        "--concurrency",
        "1,2",
        "--rss-requests",
        "20",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "scrypt_helper", "bench", *flags, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "bench-hashlib-tiny.json").read_text())
    assert report["params"]["N"] == 1024
    assert report["engine"]["hashes_per_second_1_thread"] > 0
    assert [row["concurrency"] for row in report["http"]] == [1, 2]
    assert all(row["ok"] > 0 and row["failed"] == 0 for row in report["http"])
    assert report["rss"]["requests"] >= 20
    for name in ("throughput", "latency"):
        assert (tmp_path / f"bench-hashlib-tiny-{name}.png").read_bytes().startswith(b"\x89PNG")
    assert "clients" in done.stdout
