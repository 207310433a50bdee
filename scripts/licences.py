#!/usr/bin/env python3
"""Check the licences of a CycloneDX SBOM's components against what may ship beside MPL-2.0 code.

Exit 0 when every component passes; exit 1 naming each that does not (copyleft, proprietary,
unknown or missing licence). The policy and the table of reviewed exceptions: harness/licences.py.

    .venv/bin/python scripts/licences.py sbom.cdx.json
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ lives in the checkout, not in the package

from harness.licences import check, components


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sbom", type=Path, help="a CycloneDX SBOM in JSON")
    args = parser.parse_args(argv)
    sbom = json.loads(args.sbom.read_text())
    problems = check(sbom)
    for problem in problems:
        print(f"licence check: {problem}", file=sys.stderr)
    if problems:
        print(f"licence check: {len(problems)} problem(s) in {args.sbom}", file=sys.stderr)
        return 1
    print(f"{args.sbom}: {sum(1 for _ in components(sbom))} components, every licence acceptable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
