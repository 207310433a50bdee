"""What every benchmark prints and writes: progress lines and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def progress(message: str) -> None:
    """One line saying what is being measured now."""
    print(f"... {message}", flush=True)


def write_report(report: dict[str, Any], out: Path, name: str) -> None:
    """Write the report as ``out/name.json`` and say where."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
