"""`livemig lab`: real QEMU live migrations on 127.0.0.1 (set up with hack/lab/setup.sh; see docs/lab.md).

    livemig lab run --technique post-copy --memory 256Mi --working-set 128Mi --dirty-pages-per-s 30000 \\
        --bandwidth 200Mbit --json
    livemig lab matrix --file examples/lab/matrix.yaml --out results.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from livemig.cli.args import duration, integer, number, quantity, rate
from livemig.core.errors import LivemigError, SpecError
from livemig.lab.case import LAB_TECHNIQUES, LabCase, Pattern, parse_case, parse_matrix
from livemig.lab.install import LabInstall
from livemig.lab.predicted import predict_case, prediction_json
from livemig.lab.results import LabResult
from livemig.lab.runner import run_case

# --flag -> the case key shared with the matrix file.
_FLAGS = (
    ("--technique", "technique"),
    ("--memory", "memory"),
    ("--working-set", "working-set"),
    ("--dirty-pages-per-s", "dirty-pages-per-s"),
    ("--bandwidth", "bandwidth"),
    ("--downtime-limit", "downtime-limit"),
    ("--timeout", "timeout"),
    ("--post-copy-timeout-per-gib", "post-copy-timeout-per-gib"),
    ("--xbzrle-cache", "xbzrle-cache"),
    ("--pattern", "pattern"),
    ("--bytes-per-page", "bytes-per-page"),
)


def _register_sim_backend() -> None:
    """Offer `backend: qemu` to the simulator when the lab is set up (the CLI is the composition root: sim and lab
    do not import each other).  Without the lab the simulator says qemu is not available here."""
    try:
        LabInstall.load()
    except LivemigError:
        return
    from livemig.lab.simbackend import QemuMigrationBackend
    from livemig.sim.backend import register_backend

    register_backend("qemu", QemuMigrationBackend)


def register(subparsers: Any) -> None:
    _register_sim_backend()
    lab = subparsers.add_parser("lab", help="real QEMU live migrations on loopback (docs/lab.md)", description=__doc__)
    commands = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="migrate the lab guest once with one technique")
    run.add_argument("--technique", required=True, choices=[str(t) for t in LAB_TECHNIQUES])
    run.add_argument("--memory", default="256Mi", type=quantity(), help="guest memory, 128Mi to 2Gi (default 256Mi)")
    run.add_argument(
        "--working-set", default="128Mi", type=quantity(), help="the dirtier's working set (default 128Mi)"
    )
    run.add_argument(
        "--dirty-pages-per-s",
        default="2000",
        type=integer(minimum=0, maximum=2**31 - 1),
        help="target pages dirtied per second (default 2000)",
    )
    run.add_argument(
        "--bandwidth", default="200Mbit", type=rate(), help="migration bandwidth cap (max-bandwidth; default 200Mbit)"
    )
    run.add_argument(
        "--downtime-limit", default="300ms", type=duration(allow_zero=False), help="downtime-limit (default 300ms)"
    )
    run.add_argument(
        "--timeout",
        default="60s",
        type=duration(allow_zero=False),
        help="wall-clock cap; then migrate_cancel = not converged",
    )
    run.add_argument(
        "--post-copy-timeout-per-gib",
        default="1",
        type=number(),
        help="post-copy switch: this x ceil(GB) seconds",
    )
    run.add_argument("--xbzrle-cache", default="64Mi", type=quantity(), help="xbzrle-cache-size (default 64Mi)")
    run.add_argument("--pattern", default=str(Pattern.SEQUENTIAL), choices=[str(p) for p in Pattern])
    run.add_argument(
        "--bytes-per-page",
        default="8",
        type=integer(minimum=1, maximum=4096),
        help="bytes the dirtier writes per page (default 8)",
    )
    run.add_argument("--run-dir", type=Path, help="keep logs and samples here (default: the lab cache)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(handler=_run)

    matrix = commands.add_parser("matrix", help="run a matrix of cases one at a time; append JSON lines")
    matrix.add_argument("--file", required=True, type=Path, help="matrix YAML (examples/lab/matrix.yaml)")
    matrix.add_argument("--out", required=True, type=Path, help="results, one JSON object per run (appended)")
    matrix.add_argument("--only", action="append", default=[], help="run only cases whose name contains this")
    matrix.set_defaults(handler=_matrix)


def _case_from_args(args: argparse.Namespace) -> LabCase:
    doc = {key: getattr(args, flag[2:].replace("-", "_")) for flag, key in _FLAGS}
    return parse_case(doc, "--")


def record(case: LabCase, result: LabResult, *, full: bool = False) -> dict[str, Any]:
    """The run's JSON object: the issue's keys, `predicted` from the model on the achieved dirty rate."""
    data = result.to_json()
    achieved = result.guest_dirty_pages_per_s or float(case.dirty_pages_per_s)
    prediction = predict_case(case, achieved, result.loopback_bps, result.guest_cpu_busy)
    data["predicted"] = prediction_json(prediction, full=full)
    return data


def _run(args: argparse.Namespace) -> int:
    case = _case_from_args(args)
    install = _install()
    _stop_on_sigterm()
    result = asyncio.run(run_case(install, case, run_dir=args.run_dir))
    data = record(case, result)
    if args.json:
        print(json.dumps(data))
    else:
        _print_human(case, result, data)
    return 0 if result.status != "failed" else 1


def _matrix(args: argparse.Namespace) -> int:
    try:
        doc = yaml.safe_load(args.file.read_text())
    except OSError as exc:
        raise SpecError("--file", f"cannot read {args.file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError("--file", f"not valid YAML: {exc}") from None
    cases = [c for c in parse_matrix(doc) if not args.only or any(o in c.label for o in args.only)]
    install = _install()
    _stop_on_sigterm()
    runs = [(case, index) for case in cases for index in range(case.repeat)]
    started = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for position, (case, repetition) in enumerate(runs, start=1):
        label = case.label + (f"#{repetition + 1}" if case.repeat > 1 else "")
        line: dict[str, Any]
        try:
            result = asyncio.run(run_case(install, case))
        except LivemigError as exc:
            line = {"case": label, "error": str(exc)}
            print(f"[{position}/{len(runs)}] {label}: error: {exc}", flush=True)
        else:
            data = record(case, result, full=True)
            line = {"case": label, "repetition": repetition + 1, "inputs": _inputs(case), **data}
            line["details"] = result.details()
            p = data["predicted"]
            print(
                f"[{position}/{len(runs)}] {label}: {data['status']} {_fmt(data['total_time_s'])} s "
                f"{_mb(data['transferred_bytes'])} MB, downtime {_fmt(data['downtime_s'], 3)} s, "
                f"guest {data['guest_dirty_pages_per_s']} pages/s | model {p['outcome']} "
                f"{_fmt(p['total_time_s'])} s {_mb(p['transferred_bytes'])} MB "
                f"({time.monotonic() - started:.0f} s elapsed)",
                flush=True,
            )
        with args.out.open("a") as out:
            out.write(json.dumps(line) + "\n")
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that run_case's clean-up stops both QEMU processes."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _install() -> LabInstall:
    try:
        return LabInstall.load()
    except LivemigError as exc:
        print(f"livemig lab: {exc}", file=sys.stderr)
        raise SystemExit(3) from None


def _inputs(case: LabCase) -> dict[str, Any]:
    return {
        "technique": str(case.technique),
        "memory_bytes": case.memory_bytes,
        "working_set_bytes": case.working_set_bytes,
        "dirty_pages_per_s": case.dirty_pages_per_s,
        "bandwidth_bps": case.bandwidth_bps,
        "downtime_limit_s": case.downtime_limit_s,
        "timeout_s": case.timeout_s,
        "post_copy_timeout_per_gib": case.post_copy_timeout_per_gib,
        "xbzrle_cache_bytes": case.xbzrle_cache_bytes,
        "pattern": str(case.pattern),
        "bytes_per_page": case.bytes_per_page,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


def _print_human(case: LabCase, result: LabResult, data: dict[str, Any]) -> None:
    p = data["predicted"]
    rows = (
        ("status / outcome", data["status"], p["outcome"]),
        ("total time s", _fmt(data["total_time_s"], 2), _fmt(p["total_time_s"], 2)),
        ("downtime s", _fmt(data["downtime_s"], 3), _fmt(p["downtime_s"], 3)),
        ("transferred MB", _mb(data["transferred_bytes"]), _mb(p["transferred_bytes"])),
    )
    print(f"{case.label}: QEMU {result.qemu_version}, guest {data['guest_dirty_pages_per_s']} pages/s achieved")
    print(f"{'':18} {'QEMU':>14} {'model':>14}")
    for name, measured, predicted in rows:
        print(f"{name:18} {measured:>14} {predicted:>14}")
    print(
        f"dirty syncs {data['dirty_syncs']}, post-copy bytes {data['postcopy_bytes']}, "
        f"max throttle {data['max_throttle_pct']} %, destination guest alive: {data['guest_alive']}"
    )
    print(f"logs: {result.run_dir}")
