"""Pure parsing: the dirtier's console lines, QEMU's `query-migrate` time series, and the run's result."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from livemig.core.vocabulary import Outcome

_DIRTY = re.compile(r"^DIRTY t=(?P<t>[0-9.]+) pages=(?P<pages>\d+) rate=(?P<rate>[0-9.]+)")
_BUSY = re.compile(r" busy=(?P<busy>-?[0-9.]+)")
# What a dead or dying guest kernel prints on the console.
GUEST_ERROR_MARKERS = ("BUG:", "Kernel panic", "Oops", "general protection fault", "list_add corruption")


class Status(StrEnum):
    """How a lab run ended (the --json `status`), in the model's outcome words."""

    COMPLETED = "completed"
    NOT_CONVERGED = "not-converged"  # the wall-clock cap passed first: migrate_cancel
    FAILED = "failed"  # QEMU reported failed, or the link was cut

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.value)


@dataclass(frozen=True, slots=True)
class DirtyReport:
    """One `DIRTY` line: guest monotonic time, pages dirtied in the period, the achieved pages/s."""

    guest_t_s: float
    pages: int
    rate: float
    busy: float | None = None  # share of the vCPU not idle in the period (None: not reported)


def parse_dirty_lines(text: str) -> list[DirtyReport]:
    reports = []
    for line in text.splitlines():
        match = _DIRTY.match(line.strip())
        if match:
            busy = _BUSY.search(line)
            share = float(busy["busy"]) if busy and float(busy["busy"]) >= 0 else None
            reports.append(DirtyReport(float(match["t"]), int(match["pages"]), float(match["rate"]), share))
    return reports


def guest_errors(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if any(marker in line for marker in GUEST_ERROR_MARKERS)]


def steady_busy(reports: Sequence[DirtyReport], *, skip: int = 1) -> float | None:
    """Mean vCPU busy share over the reports after the first `skip` (None when the guest does not report it)."""
    usable = [r.busy for r in (list(reports[skip:]) or list(reports)) if r.busy is not None]
    return sum(usable) / len(usable) if usable else None


def steady_rate(reports: Sequence[DirtyReport], *, skip: int = 1) -> float | None:
    """Mean achieved pages/s over the reports after the first `skip` (the first period includes start-up)."""
    usable = list(reports[skip:]) or list(reports)
    if not usable:
        return None
    return sum(r.rate for r in usable) / len(usable)


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll: host seconds since `migrate` was sent, and the source's (and maybe destination's) query-migrate."""

    t_s: float
    src: Mapping[str, Any]
    dst: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MigrationSummary:
    """What QEMU's time series says about a run."""

    final_status: str
    total_time_s: float | None
    downtime_s: float | None
    setup_time_s: float | None
    transferred_bytes: int
    dirty_syncs: int
    postcopy_bytes: int
    postcopy_requests: int
    max_throttle_pct: int
    max_dirty_pages_rate: int
    mbps: float | None
    error: str | None
    first_pass_zero_pages: int | None = None  # ram.duplicate when pass 0 ended (the guest's untouched pages)


def _ram(info: Mapping[str, Any]) -> Mapping[str, Any]:
    ram = info.get("ram")
    return ram if isinstance(ram, Mapping) else {}


def summarize(samples: Iterable[Sample]) -> MigrationSummary:
    """Fold the source's time series: counters from the last record that has them, rates as maxima."""
    samples = list(samples)
    final: Mapping[str, Any] = samples[-1].src if samples else {}
    transferred = syncs = pc_bytes = pc_requests = throttle = dirty_rate = 0
    error = None
    zero_pages: int | None = None
    for sample in samples:
        ram = _ram(sample.src)
        if zero_pages is None and int(ram.get("dirty-sync-count", 0)) >= 2 and sample.src.get("status") == "active":
            zero_pages = int(ram.get("duplicate", 0))
        transferred = max(transferred, int(ram.get("transferred", 0)))
        syncs = max(syncs, int(ram.get("dirty-sync-count", 0)))
        pc_bytes = max(pc_bytes, int(ram.get("postcopy-bytes", 0)))
        pc_requests = max(pc_requests, int(ram.get("postcopy-requests", 0)))
        dirty_rate = max(dirty_rate, int(ram.get("dirty-pages-rate", 0)))
        throttle = max(throttle, int(sample.src.get("cpu-throttle-percentage", 0)))
        if sample.src.get("error-desc"):
            error = str(sample.src["error-desc"])
    status = str(final.get("status", "none"))
    total = final.get("total-time")
    if total is None and samples:
        # QEMU drops total-time from a cancelled or failed record: the run lasted until our last poll.
        total = samples[-1].t_s * 1000
    downtime = final.get("downtime")
    switch_downtimes = [
        s.src["downtime"] for s in samples if s.src.get("status") == "postcopy-active" and "downtime" in s.src
    ]
    if switch_downtimes:
        # Post-copy: postcopy_start records the guest's stop (whole milliseconds) and query-migrate shows it from
        # then on.  When that stop took under 1 ms it is 0, and QEMU's migration_downtime_end reads 0 as "not set"
        # and records again at completion (switch -> end of the post-copy phase, while the guest runs on the
        # destination).  The figure shown during postcopy-active is the guest's real stop.
        downtime = min(switch_downtimes)
    setup = final.get("setup-time")
    mbps = _ram(final).get("mbps")
    return MigrationSummary(
        final_status=status,
        total_time_s=float(total) / 1000 if total is not None else None,
        downtime_s=float(downtime) / 1000 if downtime is not None and status == "completed" else None,
        setup_time_s=float(setup) / 1000 if setup is not None else None,
        transferred_bytes=transferred,
        dirty_syncs=syncs,
        postcopy_bytes=pc_bytes,
        postcopy_requests=pc_requests,
        max_throttle_pct=throttle,
        max_dirty_pages_rate=dirty_rate,
        mbps=float(mbps) if mbps is not None else None,
        error=error,
        first_pass_zero_pages=zero_pages,
    )


def throttle_steps(samples: Iterable[Sample]) -> list[int]:
    """The distinct throttle percentages the source went through, in order (auto-converge's steps)."""
    steps: list[int] = []
    for sample in samples:
        pct = int(sample.src.get("cpu-throttle-percentage", 0))
        if pct and (not steps or steps[-1] != pct):
            steps.append(pct)
    return steps


@dataclass(frozen=True, slots=True)
class CutReport:
    """What happened after the relay was cut."""

    cut_at_s: float  # host seconds since `migrate`
    phase: str
    src_status: str  # the source's migration status at the end of the watch
    dst_status: str | None  # None when the destination QEMU exited
    src_paused_after_s: float | None  # seconds from the cut to `postcopy-paused` on the source
    dst_paused_after_s: float | None
    src_vm_running: bool | None  # query-status of the source VM at the end of the watch
    dst_exit_code: int | None
    observed_s: float  # how long we watched
    src_guest_reports_after_cut: int  # new DIRTY lines on each side during the watch
    dst_guest_reports_after_cut: int
    frozen_s: float | None  # guest made no progress on either side for this long (a lower bound: it stays frozen)


@dataclass(frozen=True, slots=True)
class LabResult:
    """A run's measured figures and the evidence behind them."""

    technique: str
    status: Status
    summary: MigrationSummary
    guest_dirty_pages_per_s: float | None  # achieved on the source before the migration
    guest_alive: bool | None  # destination guest dirtying after completion (None when not completed)
    dst_guest_dirty_pages_per_s: float | None = None
    guest_errors: tuple[str, ...] = ()
    post_copy_switch_at_s: float | None = None  # host seconds since migrate, when migrate-start-postcopy went out
    throttle_steps: tuple[int, ...] = ()
    cut: CutReport | None = None
    boot_s: float | None = None
    wall_s: float | None = None
    qemu_version: str = ""
    loopback_bps: float | None = None  # the relay's raw speed (QEMU's stop-and-copy runs uncapped at it)
    guest_cpu_busy: float | None = None  # the guest's vCPU busy share before the migration (the writer's need)
    # The host's 1/5/15-minute load averages when the migration started: QEMU under TCG is load-sensitive.
    load_average: tuple[float, float, float] | None = None
    run_dir: str = ""
    samples: tuple[Sample, ...] = field(default=(), repr=False)

    @property
    def postcopy_phase_s(self) -> float | None:
        """Switch to completion: the window in which a link failure loses the VM (the model's risk window)."""
        if self.post_copy_switch_at_s is None or self.summary.total_time_s is None or self.status != "completed":
            return None
        if self.summary.postcopy_bytes == 0:
            return 0.0
        return max(0.0, self.summary.total_time_s - self.post_copy_switch_at_s)

    def to_json(self) -> dict[str, Any]:
        """The issue's --json object (without `predicted`, which the CLI adds)."""
        s = self.summary
        return {
            "technique": self.technique,
            "status": str(self.status),
            "total_time_s": _round(s.total_time_s),
            "downtime_s": _round(s.downtime_s),
            "transferred_bytes": s.transferred_bytes,
            "dirty_syncs": s.dirty_syncs,
            "postcopy_bytes": s.postcopy_bytes,
            "max_throttle_pct": s.max_throttle_pct,
            "guest_alive": self.guest_alive,
            "guest_dirty_pages_per_s": _round(self.guest_dirty_pages_per_s, 1),
        }

    def details(self) -> dict[str, Any]:
        """Everything else worth keeping in results.jsonl."""
        s = self.summary
        return {
            "qemu_status": s.final_status,
            "error": s.error,
            "setup_time_s": _round(s.setup_time_s),
            "postcopy_requests": s.postcopy_requests,
            "max_dirty_pages_rate": s.max_dirty_pages_rate,
            "mbps": s.mbps,
            "first_pass_zero_pages": s.first_pass_zero_pages,
            "post_copy_switch_at_s": _round(self.post_copy_switch_at_s),
            "postcopy_phase_s": _round(self.postcopy_phase_s),
            "throttle_steps": list(self.throttle_steps),
            "dst_guest_dirty_pages_per_s": _round(self.dst_guest_dirty_pages_per_s, 1),
            "guest_errors": list(self.guest_errors),
            "boot_s": _round(self.boot_s, 1),
            "wall_s": _round(self.wall_s, 1),
            "qemu_version": self.qemu_version,
            "loopback_bps": None if self.loopback_bps is None else round(self.loopback_bps),
            "guest_cpu_busy": _round(self.guest_cpu_busy, 4),
            "load_average": None if self.load_average is None else [round(x, 2) for x in self.load_average],
            "run_dir": self.run_dir,
            "cut": None if self.cut is None else {key: getattr(self.cut, key) for key in self.cut.__dataclass_fields__},
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
