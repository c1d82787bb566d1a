#!/usr/bin/env python3
"""Re-derive each run's measured figures from its kept `samples.json` with the current `livemig.lab.results`.

    .venv/bin/python hack/lab/resummarize.py examples/lab/results-techniques.jsonl [--write]

For runs recorded before a fix to `summarize` (e.g. post-copy's downtime, which QEMU records again at completion when
the switch took under 1 ms).  Runs whose run directory is gone are left as they are.  Prints what changes; --write
rewrites the file in place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livemig.lab.results import Sample, summarize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    out = []
    for line in args.results.read_text().splitlines():
        record = json.loads(line) if line.strip() else None
        run_dir = Path(str(((record or {}).get("details") or {}).get("run_dir") or "/nonexistent"))
        samples_path = run_dir / "samples.json"
        if record is not None and samples_path.is_file():
            samples = [Sample(s["t_s"], s["src"], s.get("dst")) for s in json.loads(samples_path.read_text())]
            downtime = summarize(samples).downtime_s
            if downtime is not None and downtime != record.get("downtime_s"):
                print(f"{record['case']}: downtime {record.get('downtime_s')} -> {downtime}", file=sys.stderr)
                record["downtime_s"] = downtime
            line = json.dumps(record)
        out.append(line)
    if args.write:
        args.results.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
