#!/usr/bin/env python3
"""Turn the lab's results.jsonl into the "model vs real QEMU" table (see livemig.lab.calibration).

    .venv/bin/python hack/lab/calibration_table.py examples/lab/results.jsonl \
        --notes examples/lab/calibration-notes.md --write docs/model.md

Without --write it prints the table.  The model's columns are re-predicted with the model in the tree.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from livemig.lab.calibration import load_rows, render, write_between_markers
from livemig.lab.install import LabInstall, LabNotInstalledError
from livemig.lab.relay import measure_throughput

COMMAND = (
    "livemig lab matrix --file examples/lab/matrix.yaml --out examples/lab/results.jsonl && "
    "python hack/lab/calibration_table.py examples/lab/results.jsonl --loopback-bps 480e6 "
    "--notes examples/lab/calibration-notes.md --write docs/model.md"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--write", type=Path, help="markdown file to update between the qemu-calibration markers")
    parser.add_argument("--notes", type=Path, help="markdown appended after the table (the calibration notes)")
    parser.add_argument(
        "--loopback-bps", type=float, help="the relay's raw speed in bytes/s (default: measure it now, 256 MiB)"
    )
    args = parser.parse_args()
    lines = args.results.read_text().splitlines()
    loopback = args.loopback_bps
    if loopback is None:
        loopback = asyncio.run(measure_throughput())
        print(f"measured the relay's raw speed: {loopback / 1e6:.0f} MB/s (--loopback-bps fixes it)", file=sys.stderr)
    rows = load_rows(lines, loopback)
    if not rows:
        print(f"{args.results}: no measured runs", file=sys.stderr)
        return 1
    versions = {str((row.measured.get("details") or {}).get("qemu_version", "?")) for row in rows}
    try:
        kernel = LabInstall.load().kernel_version
    except LabNotInstalledError:
        kernel = "(lab not installed here)"
    table = render(
        rows, command=COMMAND, qemu_version=", ".join(sorted(versions)), kernel=kernel, loopback_bps=loopback
    )
    if args.notes:
        table += "\n" + args.notes.read_text()
    if args.write:
        args.write.write_text(write_between_markers(args.write.read_text() if args.write.exists() else "", table))
        print(f"wrote {len(rows)} runs into {args.write}", file=sys.stderr)
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
