"""A VMI as the migration model sees it: its size, dirty rate and working set, and what its measured usage says
about the two inputs the lab calibrated (docs/model.md, "Model changes the calibration made", 1 and 5).

One rule for the planners' costs and the simulator's stepper, so that both predict a move from the same guest.
"""

from __future__ import annotations

import math

from livemig.core.cluster import Vmi
from livemig.core.model import VmParams

# Grid steps for the planners' prediction cache: near-equal guests share one prediction.
_ZERO_STEP = 1 / 64  # of guest memory, rounded down (fewer zero pages: the prediction stays on the safe side)
_CPU_STEP = 1 / 20  # of the vCPUs, rounded up (a busier writer: auto-converge's throttle bites sooner)


def guest_params(
    vmi: Vmi,
    *,
    dirty_rate_bps: float,
    cpu_cores: float,
    memory_used_bytes: float,
    quantised: bool = False,
) -> VmParams:
    """The model's `VmParams` for `vmi` with its usage at one moment.

    `zero_bytes` is guest memory minus the memory the guest uses: QEMU finds never-written pages zero in pass 0 and
    sends a marker for each.  `cpu_utilization` is `usage.cpu / vcpus`, the share of vCPU time the guest's writers
    take, which decides when auto-converge's throttle starts to slow them.  A usage the snapshot does not know is
    the VMI's whole memory and all its vCPUs (`docs/snapshot.md`), which gives the calibration's safe defaults: no
    zero pages and a CPU-bound writer.  `quantised` rounds both to a coarse grid, toward the safe side.
    """
    memory = vmi.memory_bytes
    zero_fraction = min(1.0, max(0.0, (memory - memory_used_bytes) / memory))
    utilization = min(1.0, max(0.0, cpu_cores / vmi.vcpus)) if vmi.vcpus > 0 else 1.0
    if quantised:
        zero_fraction = math.floor(zero_fraction / _ZERO_STEP + 1e-9) * _ZERO_STEP
        utilization = math.ceil(utilization / _CPU_STEP - 1e-9) * _CPU_STEP
    return VmParams(
        memory_bytes=memory,
        dirty_rate_bps=dirty_rate_bps,
        working_set_bytes=vmi.working_set_bytes,
        zero_bytes=zero_fraction * memory,
        # An idle guest (no measured CPU) still writes with whatever it gets: the model needs u > 0.
        cpu_utilization=min(1.0, max(utilization, _CPU_STEP)),
    )
