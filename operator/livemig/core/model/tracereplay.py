"""Checkpoint / trace-replay (Liu et al. 2009, CR/TR-Motion).

Pass 0 sends a checkpoint of all memory; later passes ship the execution log produced meanwhile (rate L, not
deduplicated, so uncapped) and the target replays it; a log pass moves at min(R, replay rate).  Log passes shrink by
rho = L / min(R, replay): it converges only while rho < 1.  Downtime = the last log / min(R, replay) + T_res.
"""

from __future__ import annotations

from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import TraceReplayParams, VmParams
from livemig.core.model.precopy import precopy_mechanics


def log_rate_bps(vm: VmParams, params: TraceReplayParams) -> float:
    if vm.log_rate_bps is not None:
        return vm.log_rate_bps
    return vm.dirty_rate_bps * params.log_bytes_per_dirty_byte


def trace_replay_mechanics(vm: VmParams, params: TraceReplayParams) -> Mechanics:
    return precopy_mechanics(vm)._replace(
        log_rate_bps=log_rate_bps(vm, params),
        later_rate_cap_bps=params.replay_rate_bps,
    )
