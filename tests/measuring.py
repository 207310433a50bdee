"""Running a measuring command (a ``bench`` mode, a harness measurement) to its end in a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_measurement(module: str, *args: str, out: Path | None) -> subprocess.CompletedProcess[str]:
    """``python -m module args --out out`` (no ``--out`` where ``out`` is None) from the checkout's
    root; it must exit 0 without a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args, *(("--out", str(out)) if out is not None else ())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done
