"""The published validation cases of papers.md (V1-V12), evaluated against the model.

Each case runs the model with the paper's own parameters (papers.md: P = 4096 B, S = 0, T_res = 0, Xen rule at a fixed
link rate unless the case says otherwise) and returns checks (model value, expected value, tolerance, pass/fail).
test_model_validation.py asserts them; `python tests/unit/core/model/model_cases.py` rewrites the validation table in
docs/model.md between `<!-- validation:begin -->` and `<!-- validation:end -->` (test_model_validation.py fails when the
table is stale).  A check that the model cannot meet is kept, marked `known_gap` with the reason, and explained in
docs/model.md; its test is a strict xfail, so it starts failing the day the model meets it.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from livemig.core.model import (
    LinkParams,
    MigrationRun,
    MigrationSettings,
    Prediction,
    StopRules,
    VmParams,
    XenParams,
    XenRateLimiter,
    predict,
)
from livemig.core.model.autoconverge import converging_throttle
from livemig.core.model.params import CompressionParams
from livemig.core.model.precopy import xen_next_rate
from livemig.core.vocabulary import AbortReason, Outcome, Technique

GIB = 2**30
MIB = 2**20
GBIT = 125e6  # 1 Gbit/s in bytes/s
XEN = MigrationSettings(stop_rules=StopRules.XEN)
QEMU = MigrationSettings()
LAN = LinkParams(GBIT)

BEGIN = "<!-- validation:begin -->"
END = "<!-- validation:end -->"
DOC = Path(__file__).resolve().parents[4] / "docs" / "model.md"


@dataclass(frozen=True)
class Check:
    quantity: str
    model: str
    expected: str
    ok: bool
    known_gap: str = ""  # why the model does not meet it (docs/model.md explains)


@dataclass(frozen=True)
class CaseResult:
    case: str
    technique: str
    inputs: str
    source: str
    checks: tuple[Check, ...] = field(default_factory=tuple)


def rel(quantity: str, model: float, expected: float, tol: float, unit: str = "", *, gap: str = "") -> Check:
    ok = abs(model - expected) <= tol * abs(expected)
    return Check(quantity, f"{model:.4g}{unit}", f"{expected:.4g}{unit} ±{tol:.0%}", ok, gap)


def at_most(quantity: str, model: float, limit: float, unit: str = "", *, gap: str = "") -> Check:
    return Check(quantity, f"{model:.4g}{unit}", f"≤ {limit:.4g}{unit}", model <= limit, gap)


def between(quantity: str, model: float, lo: float, hi: float, unit: str = "", *, gap: str = "") -> Check:
    return Check(quantity, f"{model:.4g}{unit}", f"{lo:.4g}–{hi:.4g}{unit}", lo <= model <= hi, gap)


def equal(quantity: str, model: object, expected: object, *, gap: str = "") -> Check:
    return Check(quantity, str(model), str(expected), model == expected, gap)


def points(quantity: str, model_pct: float, expected_pct: float, tol_points: float, *, gap: str = "") -> Check:
    ok = abs(model_pct - expected_pct) <= tol_points
    return Check(quantity, f"{model_pct:+.1f} %", f"{expected_pct:+.1f} % ±{tol_points:.0f} pts", ok, gap)


def _precopy_case(
    case: str, dirty: float, inputs: str, source: str, checks: Callable[[Prediction], Sequence[Check]]
) -> CaseResult:
    p = predict(Technique.PRE_COPY, VmParams(GIB, dirty), LAN, XEN)
    return CaseResult(case, "pre-copy", inputs, source, tuple(checks(p)))


def case_v1() -> CaseResult:
    return _precopy_case(
        "V1",
        0.0,
        "M = 1 GiB, D = 0, R = 1 Gbit/s, Xen rule",
        "§11; Clark 2005",
        lambda p: [
            rel("total time", p.total_time_s, 8.59, 0.05, " s"),
            at_most("downtime", p.downtime_s, 0.01, " s"),
            rel("transferred", p.transferred_bytes / GIB, 1.00, 0.02, " GiB"),
            equal("rounds", p.rounds, 1),
            equal("outcome", p.outcome, Outcome.COMPLETED),
        ],
    )


def case_v2() -> CaseResult:
    return _precopy_case(
        "V2",
        62.5e6,
        "M = 1 GiB, D = 62.5 MB/s (λ = 0.5), R = 1 Gbit/s, Xen rule",
        "§11 + Xen stop rule",
        lambda p: [
            between("rounds", p.rounds, 12, 14),
            rel("total time", p.total_time_s, 17.18, 0.05, " s"),
            rel("transferred", p.transferred_bytes / GIB, 2.00, 0.03, " GiB"),
            at_most("downtime", p.downtime_s * 1000, 2.0, " ms"),
            equal("outcome", p.outcome, Outcome.COMPLETED),
        ],
    )


def case_v3() -> CaseResult:
    return _precopy_case(
        "V3",
        0.8 * GBIT,
        "M = 1 GiB, λ = 0.8, R = 1 Gbit/s, Xen rule",
        "§11 + Xen DEF_MAX_FACTOR 3",
        lambda p: [
            equal("rounds", p.rounds, 5),
            rel("transferred", p.transferred_bytes / GIB, 3.69, 0.03, " GiB"),
            rel("total time", p.total_time_s, 31.69, 0.05, " s"),
            rel("downtime", p.downtime_s, 2.81, 0.05, " s"),
            equal("outcome", p.outcome, Outcome.FORCED_STOP),
        ],
    )


def case_v4() -> CaseResult:
    return _precopy_case(
        "V4",
        1.25 * GBIT,
        "M = 1 GiB, λ = 1.25, R = 1 Gbit/s, Xen rule, no WWS cap",
        "§11; Clark 2005; 5·M bound",
        lambda p: [
            equal("rounds", p.rounds, 4),
            rel("transferred", p.transferred_bytes / GIB, 5.00, 0.03, " GiB"),
            rel("total time", p.total_time_s, 42.95, 0.05, " s"),
            rel("downtime", p.downtime_s, 8.59, 0.05, " s"),
            equal("outcome (Xen 'not converged')", p.outcome, Outcome.FORCED_STOP),
        ],
    )


def case_v5() -> CaseResult:
    settings = MigrationSettings(stop_rules=StopRules.XEN, post_copy_timeout_per_gib=0.0)
    checks: list[Check] = []
    for ratio in (0.0, 0.5, 1.0, 2.0, 10.0):
        p = predict(Technique.POST_COPY, VmParams(GIB, ratio * GBIT), LAN, settings)
        tag = f" (D = {ratio:g}·R)"
        checks += [
            rel("total time" + tag, p.total_time_s, 8.59, 0.10, " s"),
            rel("transferred" + tag, p.transferred_bytes / GIB, 1.00, 0.02, " GiB"),
            at_most("downtime" + tag, p.downtime_s * 1000, 10.0, " ms"),
            equal("outcome" + tag, p.outcome, Outcome.SWITCHED_TO_POST_COPY),
        ]
    return CaseResult(
        "V5",
        "post-copy",
        "switch at once (post-copy timeout 0), M = 1 GiB, R = 1 Gbit/s, any D",
        "Hines & Gopalan 2009; §11",
        tuple(checks),
    )


def case_v6() -> CaseResult:
    limiter = XenRateLimiter()
    settings = MigrationSettings(stop_rules=StopRules.XEN, xen=XenParams(rate_limiter=limiter))
    run = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 0.0), LinkParams(10 * GBIT), settings)
    first_round = run.run_to_end().total_time_s
    mbit = 1e6 / 8
    return CaseResult(
        "V6",
        "Xen rate limiting",
        "first round of M = 1 GiB at the 100 Mbit/s start rate; dirty 200 / 480 Mbit/s",
        "Xen xc_domain_save.c; Clark 2005",
        (
            rel("first round", first_round, 85.9, 0.02, " s"),
            rel(
                "next rate after 200 Mbit/s",
                xen_next_rate(limiter.start_bps, 200 * mbit, limiter) / mbit,
                250,
                0.0,
                " Mbit/s",
            ),
            rel(
                "next rate after 480 Mbit/s",
                xen_next_rate(limiter.start_bps, 480 * mbit, limiter) / mbit,
                500,
                0.0,
                " Mbit/s",
            ),
        ),
    )


def pass_payloads(p: Prediction) -> list[float]:
    """Bytes of each pre-copy pass, from the timeline (pass 0 first; a sync adds (t, what the pass left unsent)
    then (t, next pass), which is larger: the remainder plus the pages dirtied since the last sync)."""
    payloads = [p.timeline[0][1]]
    for (t0, v0), (t1, v1) in zip(p.timeline, p.timeline[1:], strict=False):
        if t1 == t0 and v1 > v0:
            payloads.append(v1)
    return payloads


def throttle_at(p: Prediction, t: float) -> float:
    value = 0.0
    for when, throttle in p.throttle_steps:
        if when < t:
            value = throttle
    return value


def case_v7() -> CaseResult:
    vm = VmParams(GIB, 2 * GBIT)
    p = predict(Technique.AUTO_CONVERGE, vm, LAN, QEMU)
    steps = [round(v * 100) for _, v in p.throttle_steps]
    payloads = pass_payloads(p)
    # The throttle in force while the first pass smaller than the one before it was being sent.
    starts = [
        t for (t, v), (t_prev, v_prev) in zip(p.timeline[1:], p.timeline, strict=False) if t == t_prev and v > v_prev
    ]
    onset = next(
        (throttle_at(p, starts[i - 1]) for i in range(1, len(payloads)) if payloads[i] < payloads[i - 1] * 0.999), None
    )
    hopeless = predict(Technique.AUTO_CONVERGE, VmParams(GIB, 100 * GBIT), LAN, QEMU)
    gap_final = (
        "QEMU keeps raising the throttle while dirtied > 50 % of sent; at 60 % (λ = 0.8) that holds, so it goes on "
        "to 80 % before the passes fit the downtime limit (the lab saw the same overshoot, see docs/model.md)"
    )
    return CaseResult(
        "V7",
        "auto-converge",
        "M = 1 GiB, D = 2·R, R = 1 Gbit/s, QEMU defaults 20/10/99, qemu profile",
        "QEMU migration/options.c, ram.c",
        (
            equal("throttle steps (first five)", steps[:5], [20, 30, 40, 50, 60]),
            equal("throttle when passes start shrinking", round((onset or 0) * 100), 60),
            equal(
                "first p with D·(1−p) < R", round((converging_throttle(2 * GBIT, GBIT, QEMU.throttle) or 0) * 100), 60
            ),
            equal("outcome", p.outcome, Outcome.COMPLETED),
            rel("guest throughput in the final phase", 1 - p.final_throttle, 0.40, 0.25, "", gap=gap_final),
            equal(
                "D ≥ 100·R: outcome",
                f"{hopeless.outcome}/{hopeless.abort_reason}",
                f"{Outcome.ABORTED}/{AbortReason.COMPLETION_TIMEOUT}",
            ),
            equal("D ≥ 100·R: final throttle", round(hopeless.final_throttle * 100), 99),
        ),
    )


def case_v8() -> CaseResult:
    unbound = MigrationSettings(stop_rules=StopRules.XEN, compression=CompressionParams(ratio=3.2, throughput_bps=1e15))
    p = predict(Technique.ADAPTIVE_COMPRESSION, VmParams(GIB, 0.0), LAN, unbound)
    data, time, down = average_cuts(Technique.ADAPTIVE_COMPRESSION, XEN)
    gap_down = (
        "under Xen's 50-page rule the convergent workloads end with sub-millisecond last rounds that compression "
        "shrinks in bytes and time; measured downtimes also hold fixed costs (state, resume) the paper does not give"
    )
    return CaseResult(
        "V8",
        "adaptive-compression",
        "V1 with c = 3.2, not CPU-bound; then MECOM defaults (c = 3.2, 184 MB/s) on the workload grid, Xen rule",
        "Jin et al. CLUSTER 2009",
        (
            rel("transferred (V1, c = 3.2)", p.transferred_bytes / GIB, 0.3125, 0.05, " GiB"),
            rel("total time (V1, c = 3.2)", p.total_time_s, 2.68, 0.05, " s"),
            points("data vs pre-copy (grid mean)", data, -68.8, 10),
            points("total time vs pre-copy (grid mean)", time, -32.0, 10),
            points("downtime vs pre-copy (grid mean)", down, -27.1, 10, gap=gap_down),
        ),
    )


def workload_grid() -> list[VmParams]:
    """The comparison workloads of V8-V10, fixed before looking at results: Gigabit LAN, M = 1 GiB, writable
    working sets of 64/128/256 MiB taking 90 % of the writes, dirty rate 0.1/0.3/0.5/1/2 x R."""
    return [
        VmParams(GIB, lam * GBIT, working_set_bytes=wss * MIB, hot_write_fraction=0.9)
        for wss in (64, 128, 256)
        for lam in (0.1, 0.3, 0.5, 1.0, 2.0)
    ]


def relative_changes(technique: Technique, settings: MigrationSettings) -> list[tuple[float, float, float]]:
    """Per workload: (data, total time, downtime) change of `technique` against plain pre-copy, in %."""
    rows = []
    for vm in workload_grid():
        base = predict(Technique.PRE_COPY, vm, LAN, settings, timeline=False)
        other = predict(technique, vm, LAN, settings, timeline=False)
        rows.append(
            (
                100 * (other.transferred_bytes / base.transferred_bytes - 1),
                100 * (other.total_time_s / base.total_time_s - 1),
                100 * (other.downtime_s / base.downtime_s - 1),
            )
        )
    return rows


def average_cuts(technique: Technique, settings: MigrationSettings) -> tuple[float, float, float]:
    rows = relative_changes(technique, settings)
    return tuple(statistics.fmean(r[i] for r in rows) for i in range(3))  # type: ignore[return-value]


def case_v9() -> CaseResult:
    data, time, _ = average_cuts(Technique.WORKING_SET, XEN)
    gap = (
        "link-bound, the model's time is proportional to its bytes, so it cannot cut time by half the data cut as "
        "measured (LRU/splay pre-processing cost unknown); the paper's workloads are not given"
    )
    return CaseResult(
        "V9",
        "working-set",
        "workload grid with and without WWS hold-back, Xen rule",
        "Zaw & Thein 2012",
        (
            points("data vs pre-copy (grid mean)", data, -23.67, 10, gap=gap),
            points("total time vs pre-copy (grid mean)", time, -11.45, 10, gap=gap),
        ),
    )


def case_v10() -> CaseResult:
    rows = relative_changes(Technique.TRACE_REPLAY, XEN)
    worst_down = -min(r[2] for r in rows)
    worst_time = -min(r[1] for r in rows)
    base_sync = []
    for vm in workload_grid():
        base = predict(Technique.PRE_COPY, vm, LAN, XEN, timeline=False)
        other = predict(Technique.TRACE_REPLAY, vm, LAN, XEN, timeline=False)
        base_sync.append(100 * (1 - (other.transferred_bytes - GIB) / (base.transferred_bytes - GIB)))
    diverging = VmParams(GIB, GBIT, log_rate_bps=1.2 * GBIT)
    xen_div = predict(Technique.TRACE_REPLAY, diverging, LAN, XEN)
    qemu_div = predict(Technique.TRACE_REPLAY, diverging, LAN, QEMU)
    gap_down = "both downtimes are sub-millisecond under Xen's 50-page rule, so their ratio says nothing"
    gap_sync = "the log rate (5 % of the dirty rate) is an assumption; the paper gives no log rates for its runs"
    gap_time = (
        "the model omits CR/TR's checkpoint and replay overheads: for λ ≥ 0.5 its cut tracks λ (pre-copy re-sends "
        "what CR/TR logs), beyond the paper's best case"
    )
    return CaseResult(
        "V10",
        "trace-replay",
        "workload grid on a Gigabit LAN, log rate 5 % of the dirty rate, replay 1 GB/s; then log rate 1.2·R",
        "Liu et al. HPDC 2009",
        (
            at_most("largest downtime cut", worst_down, 72.4, " %", gap=gap_down),
            at_most("largest total-time cut", worst_time, 31.5, " %", gap=gap_time),
            at_most("largest cut of data to synchronise", max(base_sync), 95.9, " %", gap=gap_sync),
            equal("log ≥ replay, xen: outcome", xen_div.outcome, Outcome.FORCED_STOP),
            equal(
                "log ≥ replay, qemu: outcome",
                f"{qemu_div.outcome}/{qemu_div.abort_reason}",
                f"{Outcome.ABORTED}/{AbortReason.COMPLETION_TIMEOUT}",
            ),
        ),
    )


def case_v11() -> CaseResult:
    # Plausible inputs (papers.md marks the runs' sizes as unverified): a web server with a 16 MiB and a game
    # server with a 4 MiB writable working set rewritten faster than the link, on a Gigabit LAN.
    web = predict(Technique.PRE_COPY, VmParams(800 * MIB, 2 * GBIT, working_set_bytes=16 * MIB), LAN, XEN)
    game = predict(Technique.PRE_COPY, VmParams(64 * MIB, 2 * GBIT, working_set_bytes=4 * MIB), LAN, XEN)
    return CaseResult(
        "V11",
        "pre-copy",
        "web: M = 800 MiB, WWS 16 MiB; game: M = 64 MiB, WWS 4 MiB; WWS dirtied at 2·R; Xen rule",
        "Clark et al. NSDI 2005 (order of magnitude)",
        (
            between("SPECweb-like downtime", web.downtime_s * 1000, 30, 500, " ms"),
            between("Quake-3-like downtime", game.downtime_s * 1000, 30, 500, " ms"),
        ),
    )


def case_v12() -> CaseResult:
    return CaseResult(
        "V12",
        "pre-copy",
        "cases with measured ground truth: the real-QEMU lab table (qemu-calibration section)",
        "Akoush 2010; Liu 2011",
        (),
    )


CASES: tuple[Callable[[], CaseResult], ...] = (
    case_v1,
    case_v2,
    case_v3,
    case_v4,
    case_v5,
    case_v6,
    case_v7,
    case_v8,
    case_v9,
    case_v10,
    case_v11,
    case_v12,
)


def render_table(results: Sequence[CaseResult]) -> str:
    lines = [
        "| case | technique | quantity | model | paper (tolerance) | match |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.checks:
            lines.append(f"| {r.case} | {r.technique} | {r.inputs} | – | – | see below |")
        for c in r.checks:
            mark = "yes" if c.ok else ("**no** (known gap)" if c.known_gap else "**NO**")
            lines.append(f"| {r.case} | {r.technique} | {c.quantity} | {c.model} | {c.expected} | {mark} |")
    lines.append("")
    lines.append("Inputs per case:")
    lines.append("")
    for r in results:
        lines.append(f"- **{r.case}** ({r.source}): {r.inputs}.")
    return "\n".join(lines)


def generated_block() -> str:
    body = render_table([case() for case in CASES])
    return f"{BEGIN}\n<!-- generated by: .venv/bin/python tests/unit/core/model/model_cases.py -->\n\n{body}\n\n{END}"


def update_doc(path: Path = DOC) -> bool:
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + generated_block() + text[end:]
    if new != text:
        path.write_text(new)
        return True
    return False


def doc_block(path: Path = DOC) -> str:
    text = path.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


if __name__ == "__main__":
    changed = update_doc()
    print(f"{DOC}: {'updated' if changed else 'up to date'}", file=sys.stderr)
