"""Technique choice judged by real QEMU: does Auto pick the technique that was measured best in the lab?

    .venv/bin/python bench/lab_choice.py [--write]

Reads the lab's measured runs (no QEMU needed; they are produced, one at a time, by
`livemig lab matrix --file examples/lab/matrix.yaml --out examples/lab/results.jsonl` and
`livemig lab matrix --file examples/lab/matrix-techniques.yaml --out examples/lab/results-techniques.jsonl`).

A *cell* is one set of lab inputs apart from the technique (memory, working set, dirty rate, access pattern, link,
downtime limit; the XBZRLE cache only matters to XBZRLE, so it is not part of the cell).  For every cell and every
policy objective, Auto's pick is `select_technique` (mode Auto, post-copy and auto-converge allowed, maxDowntime =
QEMU's downtime limit, the lab's settings and 60 s cap) on the cell's *nominal* inputs: the dirty rate the matrix asks
for (not what the guest achieved), the guest's zero pages and the relay's raw speed from the calibration (constants of
the lab, measured once), and no vCPU busy share (the model's default, a CPU-bound writer): nothing from the cell's
runs.  The pick is then judged on the runs of the techniques Auto may choose (pre-copy, auto-converge, post-copy;
XBZRLE is not actuatable through KubeVirt, so never a candidate):

- a run *succeeded* when QEMU completed and the guest was alive on the destination; it is *feasible* when it also
  kept the policy's downtime budget (300 ms);
- MinTotalTime: the best is the feasible run with the least total time; MinDowntime: the least downtime;
  Balanced: among the feasible runs within 10 % of the fastest, no post-copy risk window first (QEMU switched to
  post-copy), then the least throttle, then the least downtime (the selector's own rule on measured figures);
- Auto is right when its technique's run is feasible and within 10 % of the best on the objective's figure (total
  time for MinTotalTime and Balanced, downtime for MinDowntime); regret = Auto's figure / the best figure (infinite
  when Auto's run failed).

Writes docs/benchmarks.md between the lab-choice markers (with --write).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchdoc import DOC, write_section
from livemig.core.model.select import SelectionPolicy, select_technique
from livemig.core.vocabulary import Objective, Technique, TechniqueMode
from livemig.lab.calibration import case_from_inputs
from livemig.lab.case import LabCase
from livemig.lab.predicted import model_inputs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = (ROOT / "examples/lab/results.jsonl", ROOT / "examples/lab/results-techniques.jsonl")
BEGIN, END = "<!-- lab-choice:begin -->", "<!-- lab-choice:end -->"
LOOPBACK_BPS = 480e6  # the relay's raw speed, as in the calibration table (docs/model.md)
CANDIDATES = (Technique.PRE_COPY, Technique.AUTO_CONVERGE, Technique.POST_COPY)
OBJECTIVES = (Objective.BALANCED, Objective.MIN_TOTAL_TIME, Objective.MIN_DOWNTIME)
WITHIN = 1.10
DOWNTIME_NOISE_S = 0.020  # the calibration's downtime slack: below it the lab's downtimes are noise (docs/model.md)
TARGET_SHARE, TARGET_REGRET = 0.90, 1.05


@dataclass(frozen=True, slots=True)
class Run:
    technique: Technique
    succeeded: bool
    total_time_s: float
    downtime_s: float
    switched: bool  # QEMU switched to post-copy (a risk window)
    throttle_pct: int

    def figure(self, objective: Objective) -> float:
        if not self.succeeded:
            return math.inf
        return self.downtime_s if objective is Objective.MIN_DOWNTIME else self.total_time_s


@dataclass(frozen=True, slots=True)
class Cell:
    name: str
    case: LabCase  # the cell's inputs (technique: pre-copy)
    repeated: Mapping[Technique, tuple[Run, ...]]

    def runs(self, objective: Objective) -> dict[Technique, Run]:
        """One run per technique: with repetitions, the one with the median figure on the objective."""
        return {t: _median_run(rs, objective) for t, rs in self.repeated.items()}


@dataclass(frozen=True, slots=True)
class Judgement:
    cell: Cell
    objective: Objective
    auto: Technique
    predicted: str  # the model's figures for Auto's pick
    best: Technique | None
    regret: float
    ok: bool
    ok_with_noise: bool  # MinDowntime: within 10 % or within the lab's 20 ms of downtime noise
    same_migration: bool  # Auto's run and the best ran the same QEMU migration (no throttle, no post-copy switch)


def _run(record: Mapping[str, Any]) -> Run:
    details = record.get("details") or {}
    completed = record.get("status") == "completed" and record.get("guest_alive") is not False
    return Run(
        technique=Technique(record["technique"]),
        succeeded=completed,
        total_time_s=float(record.get("total_time_s") or math.inf),
        downtime_s=float(record.get("downtime_s") or 0.0),
        switched=details.get("post_copy_switch_at_s") is not None and record.get("postcopy_bytes", 0) > 0,
        throttle_pct=int(record.get("max_throttle_pct") or 0),
    )


def _median_run(runs: Sequence[Run], objective: Objective) -> Run:
    """Several runs of one technique in one cell: the one with the median figure on the objective (failures count
    as worst; with an even count, the better of the middle two)."""
    ordered = sorted(runs, key=lambda r: r.figure(objective))
    return ordered[(len(ordered) - 1) // 2]


def load_cells(lines: Iterable[str]) -> list[Cell]:
    grouped: dict[tuple[Any, ...], tuple[str, LabCase, dict[Technique, list[Run]]]] = {}
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        if "status" not in record:
            continue  # the lab could not run it
        case = case_from_inputs(record["inputs"])
        technique = case.technique
        if technique not in CANDIDATES:
            continue
        cell_case = replace(case, technique=Technique.PRE_COPY, xbzrle_cache_bytes=0)
        key = (
            cell_case.memory_bytes, cell_case.working_set_bytes, cell_case.dirty_pages_per_s, cell_case.bandwidth_bps,
            cell_case.downtime_limit_s, cell_case.timeout_s, cell_case.post_copy_timeout_per_gib,
            cell_case.pattern, cell_case.bytes_per_page,
        )  # fmt: skip
        name = str(record["case"]).split("#")[0].removeprefix(f"{technique}_")
        entry = grouped.setdefault(key, (name, cell_case, {}))
        entry[2].setdefault(technique, []).append(_run(record))
    return [Cell(name, case, {t: tuple(rs) for t, rs in runs.items()}) for name, case, runs in grouped.values()]


def auto_pick(case: LabCase, objective: Objective) -> tuple[Technique, str]:
    """Auto's technique on the cell's nominal inputs (nothing measured in the cell's runs)."""
    inputs = model_inputs(case, float(case.dirty_pages_per_s), LOOPBACK_BPS, None)
    policy = SelectionPolicy(
        mode=TechniqueMode.AUTO,
        objective=objective,
        allow_post_copy=True,
        allow_auto_converge=True,
        settings=inputs.settings,
    )
    selection = select_technique(inputs.vm, inputs.link, policy, compare_all=False)
    p = selection.predictions[selection.chosen]
    figures = (
        f"{p.total_time_s:.1f} s / {p.downtime_s * 1000:.0f} ms"
        if p.outcome.succeeded
        else f"{p.outcome} at {p.total_time_s:.0f} s"
    )
    return selection.chosen, figures


def measured_best(runs: Mapping[Technique, Run], objective: Objective, budget_s: float) -> Technique | None:
    order = {t: i for i, t in enumerate(CANDIDATES)}
    feasible = [r for r in runs.values() if r.succeeded and r.downtime_s <= budget_s]
    if not feasible:
        succeeded = [r for r in runs.values() if r.succeeded]
        if not succeeded:
            return None
        return min(succeeded, key=lambda r: (r.downtime_s, r.total_time_s, order[r.technique])).technique
    if objective is Objective.MIN_DOWNTIME:
        return min(feasible, key=lambda r: (r.downtime_s, r.total_time_s, order[r.technique])).technique
    if objective is Objective.MIN_TOTAL_TIME:
        return min(feasible, key=lambda r: (r.total_time_s, r.downtime_s, order[r.technique])).technique
    fastest = min(r.total_time_s for r in feasible)
    near = [r for r in feasible if r.total_time_s <= fastest * WITHIN]
    return min(near, key=lambda r: (r.switched, r.throttle_pct, r.downtime_s, order[r.technique])).technique


def judge(cell: Cell, objective: Objective) -> Judgement:
    auto, predicted = auto_pick(cell.case, objective)
    budget = cell.case.downtime_limit_s
    runs = cell.runs(objective)
    best = measured_best(runs, objective, budget)
    run = runs.get(auto)
    if best is None or run is None:
        return Judgement(cell, objective, auto, predicted, best, math.nan, best is None, best is None, False)
    feasible = [r for r in runs.values() if r.succeeded and r.downtime_s <= budget]
    # The objective's figure of the best: for Balanced the fastest feasible time (its 10 % tolerance is relative to
    # the fastest), otherwise the best run's own figure.
    if objective is Objective.BALANCED and feasible:
        best_figure = min(r.total_time_s for r in feasible)
    else:
        best_figure = runs[best].figure(objective)
    mine = run.figure(objective)
    auto_feasible = run.succeeded and (run.downtime_s <= budget or not feasible)
    regret = mine / best_figure if best_figure > 0 else (1.0 if mine == best_figure else math.inf)
    ok = auto_feasible and mine <= best_figure * WITHIN
    noisy_ok = ok or (objective is Objective.MIN_DOWNTIME and auto_feasible and mine - best_figure <= DOWNTIME_NOISE_S)
    best_run = runs[best]
    same = all(r.succeeded and not r.switched and r.throttle_pct == 0 for r in (run, best_run))
    return Judgement(cell, objective, auto, predicted, best, regret, ok, noisy_ok, same)


def _figures(run: Run | None) -> str:
    if run is None:
        return "–"
    if not run.succeeded:
        return "not converged"
    text = f"{run.total_time_s:.2f} s / {run.downtime_s * 1000:.0f} ms"
    if run.switched:
        text += ", switched"
    if run.throttle_pct:
        text += f", throttle {run.throttle_pct} %"
    return text


def _regret(value: float) -> str:
    return "∞" if math.isinf(value) else ("–" if math.isnan(value) else f"{value:.2f}")


def report(cells: Sequence[Cell], judgements: Sequence[Judgement], command: str, runs: int) -> str:
    out = [
        "## Technique choice judged by real QEMU",
        "",
        f"Command: `{command}` (reads the lab's runs, no QEMU; the model re-runs on the tree's code).  "
        "Runs: `livemig lab matrix --file examples/lab/matrix.yaml --out examples/lab/results.jsonl` and "
        "`livemig lab matrix --file examples/lab/matrix-techniques.yaml --out examples/lab/results-techniques.jsonl`"
        " (QEMU 10.0.2, TCG, 256 MiB guest, loopback; one case at a time).",
        "",
        "**Reference: real QEMU migrations, independent of livemig's model.**  Auto's pick comes from "
        "`select_technique` on each cell's nominal inputs before looking at the runs (see `bench/lab_choice.py`); "
        "the best technique is the one measured best on the policy's objective among the techniques Auto may pick "
        "(pre-copy, auto-converge, post-copy: all allowed; maxDowntime = the 300 ms downtime limit).  "
        f"{len(cells)} cells (every input combination of the lab matrix apart from the technique), "
        f"{runs} runs of the candidate techniques; where a technique ran more than once in a cell (three runs each "
        "in 1G_low, 1G_high_ws24M and 1G_high_hot-cold), the table shows and judges its median run on the "
        "objective.",
        "",
        "| cell | pre-copy | auto-converge | post-copy | objective | Auto picks (model: total / downtime) | "
        "measured best | regret | right (≤ 1.1× best) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for j in judgements:
        r = j.cell.runs(j.objective)
        out.append(
            f"| {j.cell.name} | {_figures(r.get(Technique.PRE_COPY))} | {_figures(r.get(Technique.AUTO_CONVERGE))} | "
            f"{_figures(r.get(Technique.POST_COPY))} | {j.objective} | {j.auto} ({j.predicted}) | "
            f"{j.best or 'none succeeded'} | {_regret(j.regret)} | {'yes' if j.ok else '**no**'} |"
        )
    out += ["", *summary(judgements)]
    return "\n".join(out)


def summary(judgements: Sequence[Judgement]) -> list[str]:
    lines = []
    for objective in OBJECTIVES:
        js = [j for j in judgements if j.objective is objective]
        ok = sum(j.ok for j in js)
        regrets = [j.regret for j in js if not math.isnan(j.regret)]
        median = statistics.median(regrets) if regrets else math.nan
        met = ok >= TARGET_SHARE * len(js) and median <= TARGET_REGRET
        line = (
            f"- {objective}: Auto right in {ok}/{len(js)} cells ({ok / len(js):.0%}); median regret "
            f"{_regret(median)}, worst {_regret(max(regrets, default=math.nan))} — target ≥ 90 % and ≤ 1.05: "
            f"{'**met**' if met else '**missed**'}."
        )
        if objective is Objective.MIN_DOWNTIME:
            noisy = sum(j.ok_with_noise for j in js)
            line += (
                f"  Counting a downtime within {DOWNTIME_NOISE_S * 1000:.0f} ms of the best as a tie (the lab's "
                f"downtimes are 1–120 ms and vary by that much between identical runs): {noisy}/{len(js)}."
            )
        lines.append(line)
    total = len(judgements)
    ok = sum(j.ok for j in judgements)
    regrets = [j.regret for j in judgements if not math.isnan(j.regret)]
    lines.append(
        f"- All objectives: {ok}/{total} ({ok / total:.0%}); median regret "
        f"{_regret(statistics.median(regrets) if regrets else math.nan)}."
    )
    wrong = [j for j in judgements if not j.ok]
    if wrong:
        same = sum(j.same_migration for j in wrong)
        lines += [
            "",
            f"Where Auto was not within 10 % of the measured best ({same} of these {len(wrong)} are the same QEMU "
            "migration as the best: neither run throttled nor switched to post-copy, so the techniques differ only "
            "in capabilities that never acted, and the gap is run-to-run variation):",
            "",
        ]
        lines += [
            f"- {j.cell.name}, {j.objective}: Auto {j.auto} ({_figures(j.cell.runs(j.objective).get(j.auto))} "
            f"measured), best {j.best} ({_figures(j.cell.runs(j.objective).get(j.best) if j.best else None)} "
            "measured)"
            f"{'; the same migration' if j.same_migration else ''}."
            for j in wrong
        ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, default=list(RESULTS), help="lab results (JSONL)")
    parser.add_argument("--notes", type=Path, help="markdown appended after the section (why Auto lost)")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md between the markers")
    args = parser.parse_args()
    lines = [line for path in args.results for line in path.read_text().splitlines()]
    cells = load_cells(lines)
    judgements = [judge(cell, objective) for objective in OBJECTIVES for cell in cells]
    runs = sum(len(rs) for c in cells for rs in c.repeated.values())
    command = " ".join([".venv/bin/python bench/lab_choice.py", *sys.argv[1:]])
    text = report(cells, judgements, command, runs)
    if args.notes:
        text += "\n\n" + args.notes.read_text()
    print(text)
    if args.write:
        write_section(BEGIN, END, text)
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
