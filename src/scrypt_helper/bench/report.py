"""What every benchmark prints and writes: progress lines and the JSON report."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from scrypt_helper.engines import ScryptParams


def progress(message: str) -> None:
    """One line saying what is being measured now."""
    print(f"... {message}", flush=True)


def write_report(report: dict[str, Any], out: Path, name: str) -> None:
    """Write the report as ``out/name.json`` and say where."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_header(params: ScryptParams, engine: str) -> dict[str, Any]:
    """What a report says about the run: the CPU and its cores here, the engine, the parameters."""
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "engine": engine,
        "params": {"N": params.n, "r": params.r, "p": params.p, "buflen": params.buflen},
    }
