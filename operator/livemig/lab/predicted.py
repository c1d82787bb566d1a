"""The model's prediction for a lab case: `livemig.core.model` on the same inputs as the real run.

Inputs are what the lab really ran: the guest's *achieved* dirty rate (from its console, not the target), the
working set, the link cap, the downtime limit and the technique's settings; the lab's wall-clock cap is the model's
`wall_clock_cap_s`.  KubeVirt's completion and progress timeouts are switched off (the lab applies only its cap),
except that post-copy switches at completionTimeoutPerGiB = --post-copy-timeout-per-gib as livemig actuates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livemig.core.model import LinkParams, MigrationSettings, Prediction, VmParams, XbzrleParams, predict
from livemig.core.units import PAGE_SIZE
from livemig.lab.case import LabCase, Pattern

# The lab guest's non-zero memory besides the dirtier's working set (kernel, initramfs, page tables): QEMU counted
# 16,664-16,928 zero pages (68.3-69.3 MB) in the first pass of the 5 matrix runs with a 256 MiB guest and a 128 MiB
# working set whose pass 0 finished, so B = M - W - Z = 268.4 - 134.2 - 68.8 = 65.4 MB.  A property of the guest
# image (like its kernel size), the same for every case; the model's zero_bytes = M - W - B.
GUEST_NONZERO_BASE_BYTES = 65.4e6

# The guest's busy share is measured in jiffies (4 ms at HZ=250): below this it is not a usable figure.
MIN_CPU_BUSY = 0.01

# XBZRLE's encoding of one changed run: a few bytes of run-length headers around the changed bytes (QEMU
# migration/xbzrle.c: uleb128 zero-run + uleb128 length + data).  8 changed bytes -> ~13 wire bytes (315:1 measured).
XBZRLE_RUN_OVERHEAD_BYTES = 5


@dataclass(frozen=True, slots=True)
class ModelInputs:
    vm: VmParams
    link: LinkParams
    settings: MigrationSettings


def guest_zero_bytes(case: LabCase) -> float:
    """Memory the lab guest never wrote: what the dirtier and the guest's own base leave untouched."""
    return max(0.0, case.memory_bytes - case.working_set_bytes - GUEST_NONZERO_BASE_BYTES)


def model_inputs(
    case: LabCase, achieved_pages_per_s: float, loopback_bps: float | None = None, cpu_busy: float | None = None
) -> ModelInputs:
    """`loopback_bps`: the relay's measured raw speed, at which QEMU sends the stop-and-copy (cap lifted);
    `cpu_busy`: the guest's measured vCPU busy share before the migration (None: a CPU-bound writer)."""
    working_set = float(case.working_set_bytes)
    hot_fraction = 1.0
    if case.pattern is Pattern.HOT_COLD:
        # dirtier.c defaults: 90 % of the writes into the first 10 % of the working set.
        working_set = case.working_set_bytes * 0.10
        hot_fraction = 0.90
    vm = VmParams(
        memory_bytes=float(case.memory_bytes),
        dirty_rate_bps=max(0.0, achieved_pages_per_s) * PAGE_SIZE,
        working_set_bytes=working_set,
        hot_write_fraction=hot_fraction,
        zero_bytes=guest_zero_bytes(case),
        cpu_utilization=1.0 if cpu_busy is None else min(1.0, max(MIN_CPU_BUSY, cpu_busy)),
    )
    delta_ratio = PAGE_SIZE / min(PAGE_SIZE, case.bytes_per_page + XBZRLE_RUN_OVERHEAD_BYTES)
    settings = MigrationSettings(
        downtime_limit_s=case.downtime_limit_s,
        completion_timeout_per_gib=0.0,
        progress_timeout_s=0.0,
        allow_post_copy=True,
        allow_auto_converge=True,
        allow_workload_disruption=False,
        post_copy_timeout_per_gib=case.post_copy_timeout_per_gib,
        wall_clock_cap_s=case.timeout_s,
        xbzrle=XbzrleParams(cache_bytes=float(case.xbzrle_cache_bytes), delta_ratio=delta_ratio),
    )
    link = LinkParams(case.bandwidth_bps, switchover_bandwidth_bps=loopback_bps)
    return ModelInputs(vm, link, settings)


def predict_case(
    case: LabCase, achieved_pages_per_s: float, loopback_bps: float | None = None, cpu_busy: float | None = None
) -> Prediction:
    inputs = model_inputs(case, achieved_pages_per_s, loopback_bps, cpu_busy)
    return predict(case.technique, inputs.vm, inputs.link, inputs.settings, timeline=False)


def prediction_json(prediction: Prediction, *, full: bool = False) -> dict[str, Any]:
    """The --json `predicted` object; `full` adds the figures the calibration table also compares."""
    data: dict[str, Any] = {
        "total_time_s": round(prediction.total_time_s, 3),
        "downtime_s": round(prediction.downtime_s, 4),
        "transferred_bytes": int(prediction.transferred_bytes),
        "outcome": str(prediction.outcome),
    }
    if full:
        data["risk_window_s"] = round(prediction.risk_window_s, 3)
        data["rounds"] = prediction.rounds
        data["final_throttle_pct"] = round(prediction.final_throttle * 100)
        data["switch_time_s"] = None if prediction.switch_time_s is None else round(prediction.switch_time_s, 3)
    return data
