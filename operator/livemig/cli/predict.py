"""`livemig predict`: every technique's predicted figures for one VM on one link, and the selector's choice.

Quantities in Kubernetes form are bytes (`4Gi`, `125M`); bit rates say so (`1Gbit`, `500Mbit`); the dirty rate is
bytes per second (`200Mi`).  Defaults are KubeVirt's: post-copy and auto-converge not allowed, 150 s per GiB,
150 s progress timeout, 300 ms downtime limit, no wall-clock cap.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livemig.cli.args import duration, number, quantity, rate
from livemig.core.errors import SpecError
from livemig.core.model import (
    LinkParams,
    MigrationSettings,
    Prediction,
    Selection,
    SelectionPolicy,
    StopRules,
    VmParams,
    XbzrleParams,
    select_technique,
)
from livemig.core.vocabulary import Objective, Technique, TechniqueMode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict every migration technique for one VM and choose one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--memory", required=True, type=quantity(), help="guest memory, a quantity in bytes (4Gi)")
    add(
        "--dirty-rate",
        required=True,
        type=rate(allow_zero=True),
        help="guest dirty rate in bytes/s (200Mi), or a bit rate (1Gbit)",
    )
    add(
        "--bandwidth", required=True, type=rate(), help="migration link rate (1Gbit, 500Mbit; a bare number is bytes/s)"
    )
    add(
        "--wss",
        type=quantity(allow_zero=True),
        help="writable working set, bytes (512Mi); default: none (any page may be dirty)",
    )
    add(
        "--max-downtime",
        type=duration(allow_zero=False),
        help="livemig's selection limit on downtime (default: the downtime limit)",
    )
    add(
        "--downtime-limit",
        default="300ms",
        type=duration(allow_zero=False),
        help="QEMU's downtime-limit (default 300ms)",
    )
    add(
        "--stop-rules",
        choices=[r.value for r in StopRules],
        default=StopRules.QEMU.value,
        help="which rules end pre-copy: qemu (KubeVirt's) or xen (Clark et al.); default qemu",
    )
    add("--mode", choices=[m.value for m in TechniqueMode], default=TechniqueMode.AUTO.value)
    add("--objective", choices=[o.value for o in Objective], default=Objective.BALANCED.value)
    add("--allow-post-copy", action="store_true", help="livemig may use post-copy (default: not allowed)")
    add("--allow-auto-converge", action="store_true", help="livemig may use auto-converge (default: not allowed)")
    add(
        "--completion-timeout-per-gib",
        default="150",
        type=number(),
        help="KubeVirt completionTimeoutPerGiB (default 150)",
    )
    add(
        "--post-copy-timeout-per-gib",
        default="1",
        type=number(),
        help="completionTimeoutPerGiB livemig sets to reach post-copy (default 1; 0: switch at once, as in the papers)",
    )
    add("--progress-timeout", default="150s", type=duration(), help="KubeVirt progressTimeout (default 150s)")
    add(
        "--timeout",
        type=duration(allow_zero=False),
        help="wall-clock cap on the migration (default: none); outcome not-converged",
    )
    add("--xbzrle-cache", default="64Mi", type=quantity(allow_zero=True), help="XBZRLE page cache (default 64Mi)")
    add(
        "--technique",
        choices=[*(t.value for t in Technique), "all"],
        default="all",
        help="which techniques to show (default all; the choice is made among the allowed ones either way)",
    )
    add("--json", action="store_true", help="print one JSON object")
    add("--plot", metavar="OUT.png", help="draw bytes remaining over time per technique (matplotlib)")
    parser.set_defaults(handler=run)


def inputs_from_args(args: argparse.Namespace) -> tuple[VmParams, LinkParams, SelectionPolicy]:
    """The flags (parsed by livemig.cli.args) as model inputs; --wss above --memory raises SpecError."""
    memory: int = args.memory
    wss: int | None = args.wss
    if wss is not None and wss > memory:
        raise SpecError("--wss", f"must not exceed --memory ({memory} bytes), got {wss} bytes")
    settings = MigrationSettings(
        stop_rules=StopRules(args.stop_rules),
        downtime_limit_s=args.downtime_limit,
        completion_timeout_per_gib=args.completion_timeout_per_gib,
        progress_timeout_s=args.progress_timeout,
        allow_post_copy=args.allow_post_copy,
        allow_auto_converge=args.allow_auto_converge,
        post_copy_timeout_per_gib=args.post_copy_timeout_per_gib,
        wall_clock_cap_s=args.timeout,
        xbzrle=XbzrleParams(cache_bytes=args.xbzrle_cache),
    )
    policy = SelectionPolicy(
        mode=TechniqueMode(args.mode),
        objective=Objective(args.objective),
        max_downtime_s=args.max_downtime,
        allow_post_copy=args.allow_post_copy,
        allow_auto_converge=args.allow_auto_converge,
        settings=settings,
    )
    return VmParams(memory, args.dirty_rate, working_set_bytes=wss), LinkParams(args.bandwidth), policy


def run(args: argparse.Namespace) -> int:
    vm, link, policy = inputs_from_args(args)
    selection = select_technique(vm, link, policy, compare_all=True)
    shown = tuple(Technique) if args.technique == "all" else (Technique(args.technique),)
    if args.json:
        print(json.dumps(to_json(selection, shown)))
    else:
        print(render_table(selection, policy, shown))
    if args.plot:
        plot(selection.predictions, shown, Path(args.plot), title=_title(vm, link))
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


def to_json(selection: Selection, shown: tuple[Technique, ...]) -> dict[str, Any]:
    return {
        "chosen": str(selection.chosen),
        "reason": selection.reason,
        "techniques": {
            str(t): {
                "total_time_s": float(p.total_time_s),
                "downtime_s": float(p.downtime_s),
                "transferred_bytes": int(p.transferred_bytes),
                "rounds": int(p.rounds),
                "outcome": str(p.outcome),
                "stopped_at_horizon_s": p.stopped_at_horizon_s,
            }
            for t, p in selection.predictions.items()
            if t in shown
        },
    }


def _human_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def _human_time(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def _human_horizon(s: float) -> str:
    days = s / 86400
    return f"{s:g} s ({days:g} days)" if days >= 1 else f"{s:g} s"


def render_table(selection: Selection, policy: SelectionPolicy, shown: tuple[Technique, ...]) -> str:
    header = (
        "technique",
        "outcome",
        "total",
        "downtime",
        "transferred",
        "rounds",
        "risk window",
        "max slowdown",
        "use",
    )
    rows = [header]
    for t, p in selection.predictions.items():
        if t not in shown:
            continue
        outcome = str(p.outcome) + (f" ({p.abort_reason})" if p.abort_reason else "")
        if p.stopped_at_horizon_s is not None:
            outcome += " (horizon)"
        use = (
            "chosen"
            if t is selection.chosen
            else ("allowed" if t in selection.candidates else ("not allowed" if t.actuatable else "compare only"))
        )
        rows.append(
            (
                str(t),
                outcome,
                _human_time(p.total_time_s),
                _human_time(p.downtime_s),
                _human_bytes(p.transferred_bytes),
                str(p.rounds),
                _human_time(p.risk_window_s) if p.risk_window_s > 0 else "-",
                f"{p.degradation.max_slowdown:.0%}" if p.degradation.max_slowdown > 0 else "-",
                use,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    budget = policy.downtime_budget_s
    lines.append("")
    at_horizon = [(t, p) for t, p in selection.predictions.items() if t in shown and p.stopped_at_horizon_s]
    if at_horizon:
        horizon = max(p.stopped_at_horizon_s or 0.0 for _, p in at_horizon)
        lines.append(
            f"stopped at the model's horizon of {_human_horizon(horizon)}, not finished (no timeout ends them "
            f"earlier): {', '.join(str(t) for t, _ in at_horizon)}"
        )
    lines.append(f"max downtime {_human_time(budget)}, objective {policy.objective}, mode {policy.mode}")
    lines.append(f"chosen: {selection.chosen}")
    lines.append(f"reason: {selection.reason}")
    return "\n".join(lines)


def _title(vm: VmParams, link: LinkParams) -> str:
    return (
        f"memory {_human_bytes(vm.memory_bytes)}, dirty {vm.dirty_rate_bps / 1e6:.0f} MB/s, "
        f"link {link.bandwidth_bps * 8 / 1e9:.2f} Gbit/s"
    )


def plot(predictions: Mapping[Technique, Prediction], shown: tuple[Technique, ...], out: Path, *, title: str) -> None:
    """Bytes remaining over time per technique (matplotlib, Agg backend, imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for technique, p in predictions.items():
        if technique not in shown or not p.timeline:
            continue
        times = [t for t, _ in p.timeline]
        remaining = [v / 2**20 for _, v in p.timeline]
        ax.plot(times, remaining, label=f"{technique} ({p.outcome})", drawstyle="default")
    ax.set_xlabel("time since migration start (s)")
    ax.set_ylabel("bytes remaining (MiB)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    try:
        fig.savefig(out, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise SpecError("--plot", f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    from livemig.cli import main

    sys.exit(main(["predict", *sys.argv[1:]]))
