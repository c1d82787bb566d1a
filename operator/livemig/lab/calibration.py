"""The "model vs real QEMU" table: lab results (results.jsonl) against the model, re-predicted now.

    python hack/lab/calibration_table.py examples/lab/results.jsonl --write docs/model.md

Each measured run is re-predicted with the current `livemig.core.model` from the run's recorded inputs and the
dirty rate the guest really achieved, so the table always shows the model as it is in the tree.  The table goes
between the markers `<!-- qemu-calibration:begin -->` / `<!-- qemu-calibration:end -->` (appended if absent).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livemig.core.model import Prediction
from livemig.core.vocabulary import Technique
from livemig.lab.case import LabCase, Pattern
from livemig.lab.predicted import predict_case

BEGIN = "<!-- qemu-calibration:begin -->"
END = "<!-- qemu-calibration:end -->"
TIME_TOLERANCE = 0.15
BYTES_TOLERANCE = 0.10
DOWNTIME_TOLERANCE = 0.25
DOWNTIME_SLACK_S = 0.020


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    case: LabCase
    measured: Mapping[str, Any]
    predicted: Prediction

    @property
    def measured_status(self) -> str:
        return str(self.measured["status"])

    @property
    def outcome_ok(self) -> bool:
        status = self.measured_status
        if status == "completed":
            return self.predicted.outcome.succeeded
        return str(self.predicted.outcome) == status

    @property
    def time_error(self) -> float | None:
        return _relative(self.predicted.total_time_s, self.measured.get("total_time_s"))

    @property
    def bytes_error(self) -> float | None:
        return _relative(float(self.predicted.transferred_bytes), self.measured.get("transferred_bytes"))

    @property
    def downtime_ok(self) -> bool | None:
        measured = self.measured.get("downtime_s")
        if measured is None or self.measured_status != "completed" or not self.predicted.outcome.succeeded:
            return None
        error = abs(self.predicted.downtime_s - float(measured))
        return bool(error <= DOWNTIME_SLACK_S or error <= DOWNTIME_TOLERANCE * float(measured))


def _relative(predicted: float, measured: Any) -> float | None:
    if measured is None or not measured:
        return None
    return (predicted - float(measured)) / float(measured)


def case_from_inputs(inputs: Mapping[str, Any]) -> LabCase:
    return LabCase(
        technique=Technique(inputs["technique"]),
        memory_bytes=int(inputs["memory_bytes"]),
        working_set_bytes=int(inputs["working_set_bytes"]),
        dirty_pages_per_s=int(inputs["dirty_pages_per_s"]),
        bandwidth_bps=float(inputs["bandwidth_bps"]),
        downtime_limit_s=float(inputs["downtime_limit_s"]),
        timeout_s=float(inputs["timeout_s"]),
        post_copy_timeout_per_gib=float(inputs["post_copy_timeout_per_gib"]),
        xbzrle_cache_bytes=int(inputs["xbzrle_cache_bytes"]),
        pattern=Pattern(inputs["pattern"]),
        bytes_per_page=int(inputs["bytes_per_page"]),
    )


def load_rows(lines: Iterable[str], loopback_bps: float | None = None) -> list[Row]:
    """Measured runs, re-predicted.  `loopback_bps`: the machine's relay speed (QEMU's uncapped stop-and-copy) for
    every run, so that one noisy per-run measurement cannot move a row; None uses each run's own figure."""
    rows = []
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        if "error" in record and "status" not in record:
            continue  # the lab could not run it; reported by the matrix, not a measurement
        case = case_from_inputs(record["inputs"])
        if record.get("total_time_s") is None and record.get("status") == "not-converged":
            # Runs recorded before results.summarize filled it in: migrate_cancel went out at the cap.
            record["total_time_s"] = case.timeout_s
        achieved = record.get("guest_dirty_pages_per_s") or case.dirty_pages_per_s
        raw = loopback_bps or (record.get("details") or {}).get("loopback_bps")
        busy = (record.get("details") or {}).get("guest_cpu_busy")
        rows.append(Row(record["case"], case, record, predict_case(case, float(achieved), raw, busy)))
    return rows


def _s(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e6:.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f} %"


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def render(
    rows: Sequence[Row], *, command: str, qemu_version: str, kernel: str, loopback_bps: float | None = None
) -> str:
    speed = "" if loopback_bps is None else f" and the relay's raw speed ({loopback_bps / 1e6:.0f} MB/s)"
    lines = [
        "### Model vs real QEMU (lab calibration)",
        "",
        f"Measured with QEMU {qemu_version} (TCG, 1 vCPU, loopback through the lab's relay), guest kernel {kernel};",
        f"{len(rows)} runs.  Produced by `{command}`; the model's columns are re-predicted from each run's inputs,",
        f"the dirty rate the guest achieved (`guest p/s`){speed}, with the run's wall-clock cap as the model's cap.",
        f"Targets: outcome right; total time within {TIME_TOLERANCE:.0%}; bytes within {BYTES_TOLERANCE:.0%};"
        f" downtime within {DOWNTIME_TOLERANCE:.0%} or {DOWNTIME_SLACK_S * 1000:.0f} ms.  Time and bytes of runs",
        "that did not converge are the figures at the cap.  `pc phase` = switch to completion (QEMU) vs the model's",
        "risk window.",
        "",
        "| run | guest p/s | QEMU status | model outcome | ok | time s QEMU | model | err | MB QEMU | model | err "
        "| downtime ms QEMU | model | ok | syncs | max throttle % | pc phase s QEMU / model |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m, p = row.measured, row.predicted
        details = m.get("details") or {}
        phase = details.get("postcopy_phase_s")
        downtime = m.get("downtime_s")
        lines.append(
            "| "
            + " | ".join(
                (
                    row.name,
                    f"{m.get('guest_dirty_pages_per_s') or 0:.0f}",
                    row.measured_status,
                    str(p.outcome),
                    _mark(row.outcome_ok),
                    _s(m.get("total_time_s")),
                    _s(p.total_time_s),
                    _pct(row.time_error),
                    _mb(m.get("transferred_bytes")),
                    _mb(p.transferred_bytes),
                    _pct(row.bytes_error),
                    "–" if downtime is None else f"{downtime * 1000:.0f}",
                    f"{p.downtime_s * 1000:.0f}" if p.outcome.succeeded else "–",
                    _mark(row.downtime_ok),
                    str(m.get("dirty_syncs", "–")),
                    f"{m.get('max_throttle_pct', 0)} / {round(p.final_throttle * 100)}",
                    "–" if row.case.technique is not Technique.POST_COPY else f"{_s(phase)} / {_s(p.risk_window_s)}",
                )
            )
            + " |"
        )
    lines += ["", *summary_lines(rows), "", *spread_lines(rows)]
    return "\n".join(lines).rstrip() + "\n"


def summary_lines(rows: Sequence[Row]) -> list[str]:
    n = len(rows)
    outcome = sum(r.outcome_ok for r in rows)
    timed = [r for r in rows if r.time_error is not None]
    time_ok = sum(abs(r.time_error or 0) <= TIME_TOLERANCE for r in timed)
    sized = [r for r in rows if r.bytes_error is not None]
    bytes_ok = sum(abs(r.bytes_error or 0) <= BYTES_TOLERANCE for r in sized)
    down = [r for r in rows if r.downtime_ok is not None]
    down_ok = sum(bool(r.downtime_ok) for r in down)
    return [
        f"**Score:** outcome right in {outcome}/{n} runs; total time within {TIME_TOLERANCE:.0%} in "
        f"{time_ok}/{len(timed)}; bytes within {BYTES_TOLERANCE:.0%} in {bytes_ok}/{len(sized)}; downtime within "
        f"target in {down_ok}/{len(down)} (completed on both sides).",
    ]


def spread_lines(rows: Sequence[Row]) -> list[str]:
    """Repeated cases: the spread of the measurements (borderline cases are noisy)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.name.split("#")[0]].append(row)
    repeated = {name: group for name, group in groups.items() if len(group) > 1}
    if not repeated:
        return []
    lines = [
        "Repeated cases (spread of the measured runs):",
        "",
        "| case | runs | statuses | total time s min–max (median) | MB min–max | syncs min–max |",
        "|---|---|---|---|---|---|",
    ]
    for name, group in repeated.items():
        times = [float(r.measured["total_time_s"]) for r in group if r.measured.get("total_time_s") is not None]
        sizes = [float(r.measured["transferred_bytes"]) for r in group]
        syncs = [int(r.measured.get("dirty_syncs", 0)) for r in group]
        statuses = ", ".join(r.measured_status for r in group)
        lines.append(
            f"| {name} | {len(group)} | {statuses} "
            f"| {min(times):.1f}–{max(times):.1f} ({statistics.median(times):.1f}) "
            f"| {min(sizes) / 1e6:.0f}–{max(sizes) / 1e6:.0f} | {min(syncs)}–{max(syncs)} |"
        )
    return lines


def write_between_markers(document: str, table: str) -> str:
    """Replace what is between the markers (keeping them); append the markers at the end if absent."""
    block = f"{BEGIN}\n{table.rstrip()}\n{END}"
    if BEGIN in document and END in document and document.index(BEGIN) < document.index(END):
        start = document.index(BEGIN)
        end = document.index(END) + len(END)
        return document[:start] + block + document[end:]
    return document.rstrip("\n") + "\n\n" + block + "\n"
