#!/usr/bin/env python3
"""Write a CycloneDX SBOM (JSON) of an image's Python environment, /opt/venv; run with .venv/bin/python.

cyclonedx-py (requirements/dev.txt) runs inside a throwaway container of the image, on its own
interpreter, and lists what /opt/venv holds; the SBOM's main component is the image, by digest.

    .venv/bin/python scripts/sbom.py ghcr.io/mozilla-services/scrypt-helper@sha256:... -o sbom.cdx.json
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness/ lives in the checkout, not in the package

from harness.image import podman
from harness.sbom import make_sbom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", help="the image, best by digest (it must be in the engine's store)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the SBOM")
    parser.add_argument(
        "--engine",
        choices=("podman", "docker"),
        default=None,
        help="container engine (default: podman if its store has the image, else docker)",
    )
    args = parser.parse_args(argv)
    engine = {None: None, "podman": podman(), "docker": ["docker"]}[args.engine]
    sbom = make_sbom(args.image, engine)
    args.output.write_text(json.dumps(sbom, indent=2) + "\n")
    print(f"{args.output}: {len(sbom.get('components', []))} components of {args.image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
