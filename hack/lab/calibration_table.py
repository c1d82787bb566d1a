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
    "python hack/lab/calibration_table.py examples/lab/results.jsonl --notes examples/lab/calibration-notes.md "
    "--write docs/model.md"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--write", type=Path, help="markdown file to update between the qemu-calibration markers")
    parser.add_argument("--notes", type=Path, help="markdown appended after the table (the calibration notes)")
    args = parser.parse_args()
    lines = args.results.read_text().splitlines()
    loopback = None
    if any('"loopback_bps"' not in line for line in lines if line.strip()):
        # Older records lack the per-run relay speed: measure this machine's once (documented in the table).
        loopback = asyncio.run(measure_throughput(256 * 2**20))
        print(f"loopback relay speed for records without one: {loopback / 1e6:.0f} MB/s", file=sys.stderr)
    rows = load_rows(lines, loopback)
    if not rows:
        print(f"{args.results}: no measured runs", file=sys.stderr)
        return 1
    versions = {str((row.measured.get("details") or {}).get("qemu_version", "?")) for row in rows}
    try:
        kernel = LabInstall.load().kernel_version
    except LabNotInstalledError:
        kernel = "(lab not installed here)"
    table = render(rows, command=COMMAND, qemu_version=", ".join(sorted(versions)), kernel=kernel)
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
