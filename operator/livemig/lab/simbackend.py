"""`backend: qemu` for the KubeVirt simulator: a VMI's migration carried out by two real QEMU processes.

The simulator's seam (`livemig.sim.backend.MigrationBackend`) steps a migration in simulated seconds; this backend
runs a real migration in wall time instead (the lab's `run_case` in a thread with its own event loop) and answers
every `advance` with the latest `query-migrate` sample turned into the model's `RunState`.  So a scenario with such
VMIs must run at time scale 1.  The migration's inputs are the simulator's at the start: the VMI's memory (rounded
to MiB, 128 MiB to 2 GiB), working set (default half the memory), dirty rate (in 4 KiB pages), the link bandwidth
(QEMU's max-bandwidth) and KubeVirt's configuration: auto-converge, or post-copy at the completion timeout, or
plain pre-copy aborted at the completion timeout.  Later changes of the dirty rate or bandwidth are not applied.

The guest boots (≈10-20 s of TCG) when the migration starts; until `migrate` is sent the backend reports no
progress, so the simulator counts the boot as part of the migration's running time.

This module does not import the simulator (lab and sim are independent layers); `livemig.cli.lab` registers it
with `livemig.sim.backend.register_backend("qemu", QemuMigrationBackend)`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from livemig.core.errors import LivemigError
from livemig.core.model import LinkParams, MigrationRun, MigrationSettings, Prediction, RunState, VmParams
from livemig.core.model.results import MigrationMode, Phase
from livemig.core.units import PAGE_SIZE, completion_timeout_s
from livemig.core.vocabulary import AbortReason, Outcome, Technique
from livemig.lab.case import GUEST_OVERHEAD_BYTES, MAX_MEMORY_BYTES, MIN_MEMORY_BYTES, LabCase
from livemig.lab.install import LabInstall
from livemig.lab.results import LabResult, Sample
from livemig.lab.runner import RunControl, run_case

logger = logging.getLogger(__name__)

MIB = 2**20
NO_DEADLINE_CAP_S = 600.0  # a migration KubeVirt would never abort still ends here (the lab must stop QEMU)


class MigrationStartLike(Protocol):
    """The simulator's `MigrationStart` (read-only attributes used here)."""

    @property
    def vmi_key(self) -> str: ...
    @property
    def technique(self) -> Technique: ...
    @property
    def vm(self) -> VmParams: ...
    @property
    def link(self) -> LinkParams: ...
    @property
    def settings(self) -> MigrationSettings: ...


def case_for(start: MigrationStartLike) -> LabCase:
    """The lab case that carries out the simulator's migration."""
    memory = min(MAX_MEMORY_BYTES, max(MIN_MEMORY_BYTES, math.ceil(start.vm.memory_bytes / MIB) * MIB))
    wss = start.vm.working_set_bytes if start.vm.working_set_bytes is not None else memory / 2
    wss = int(min(max(MIB, wss), memory - GUEST_OVERHEAD_BYTES)) // MIB * MIB
    settings = start.settings
    deadline = completion_timeout_s(settings.completion_timeout_per_gib, start.vm.memory_bytes)
    technique = start.technique if start.technique in (Technique.POST_COPY, Technique.AUTO_CONVERGE) else None
    # KubeVirt aborts pre-copy at the deadline; with post-copy it switches there instead, and post-copy always ends.
    aborts_at_deadline = technique is not Technique.POST_COPY and deadline > 0
    timeout = deadline if aborts_at_deadline else NO_DEADLINE_CAP_S
    return LabCase(
        technique=technique or Technique.PRE_COPY,
        memory_bytes=memory,
        working_set_bytes=wss,
        dirty_pages_per_s=round(start.vm.dirty_rate_bps / PAGE_SIZE),
        bandwidth_bps=start.link.bandwidth_bps,
        downtime_limit_s=settings.downtime_limit_s,
        timeout_s=timeout,
        post_copy_timeout_per_gib=settings.completion_timeout_per_gib,
        name=f"sim-{start.vmi_key.replace('/', '-')}",
    )


_PHASES = {
    "setup": Phase.PRE_COPY,
    "active": Phase.PRE_COPY,
    "pre-switchover": Phase.STOP_AND_COPY,
    "device": Phase.STOP_AND_COPY,
    "postcopy-active": Phase.POST_COPY,
    "postcopy-paused": Phase.POST_COPY,
    "postcopy-recover": Phase.POST_COPY,
}


class QemuMigrationBackend:
    """One VMI migration on real QEMU (the simulator's `MigrationBackend`, structurally)."""

    def __init__(self, start: MigrationStartLike, *, install: LabInstall | None = None) -> None:
        self._start = start
        self._install = install or LabInstall.load()
        self._case = case_for(start)
        self._control = RunControl()
        self._lock = threading.Lock()
        self._sample: Sample | None = None
        self._switch_at: float | None = None
        self._abort_reason: AbortReason | None = None
        self._link_failed = False
        self._result: LabResult | None = None
        self._error: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"qemu-{start.vmi_key}", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------------------- the simulator's seam

    @property
    def case(self) -> LabCase:
        return self._case

    def advance(self, dt_s: float, *, dirty_rate_bps: float, bandwidth_bps: float) -> RunState:
        """Real time: the migration moves by itself; this reports where it is (dt, rate, bandwidth not applied)."""
        return self.state()

    def abort(self, reason: AbortReason) -> bool:
        """KubeVirt's abort = `migrate_cancel`; refused once the guest stopped for the switchover or post-copy."""
        state = self.state()
        if state.done or state.phase in (Phase.STOP_AND_COPY, Phase.POST_COPY):
            return False
        with self._lock:
            self._abort_reason = reason
        self._control.cancel.set()
        return True

    def fail_link(self) -> bool:
        """Cut the relay: pre-copy fails (the source keeps running), post-copy pauses both sides (VM lost)."""
        if self.state().done:
            return False
        with self._lock:
            self._link_failed = True
        self._control.cut.set()
        return True

    def predict(self) -> Prediction:
        s = self._start
        return MigrationRun.for_kubevirt_config(s.vm, s.link, s.settings).run_to_end()

    def state(self) -> RunState:
        with self._lock:
            sample, result, error = self._sample, self._result, self._error
            abort_reason, link_failed = self._abort_reason, self._link_failed
        if result is not None:
            return self._final_state(result, abort_reason, link_failed)
        if error is not None:
            return self._state(sample, done=True, outcome=Outcome.FAILED)
        return self._state(sample, done=False, outcome=None)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until QEMU is done and stopped (tests, shutdown)."""
        return self._done.wait(timeout_s)

    @property
    def error(self) -> str | None:
        return self._error

    # ------------------------------------------------------------------------------------------ internals

    def _main(self) -> None:
        try:
            result = asyncio.run(run_case(self._install, self._case, on_sample=self._on_sample, control=self._control))
        except (LivemigError, OSError) as exc:
            logger.error("qemu backend %s: %s", self._start.vmi_key, exc)
            with self._lock:
                self._error = str(exc)
        else:
            with self._lock:
                self._result = result
        finally:
            self._done.set()

    def _on_sample(self, sample: Sample) -> None:
        with self._lock:
            self._sample = sample
            status = str(sample.src.get("status"))
            if self._switch_at is None and status.startswith("postcopy"):
                self._switch_at = sample.t_s

    def _state(self, sample: Sample | None, *, done: bool, outcome: Outcome | None) -> RunState:
        info: Mapping[str, Any] = sample.src if sample is not None else {}
        ram: Mapping[str, Any] = info.get("ram") or {}
        status = str(info.get("status", "setup"))
        phase = Phase.DONE if done else _PHASES.get(status, Phase.PRE_COPY)
        post = status.startswith("postcopy") or self._switch_at is not None
        elapsed = sample.t_s if sample is not None else 0.0
        return RunState(
            elapsed_s=elapsed,
            phase=phase,
            mode=MigrationMode.POST_COPY if post else MigrationMode.PRE_COPY,
            remaining_bytes=float(ram.get("remaining", self._case.memory_bytes)),
            transferred_bytes=float(ram.get("transferred", 0)),
            rounds=max(0, int(ram.get("dirty-sync-count", 1)) - 1),
            throttle=int(info.get("cpu-throttle-percentage", 0)) / 100,
            dirty_rate_bps=float(ram.get("dirty-pages-rate", 0)) * PAGE_SIZE,
            transfer_rate_bps=float(ram.get("mbps", 0.0)) * 1e6 / 8,
            done=done,
            outcome=outcome,
            abort_reason=None,
            downtime_s=0.0,
            risk_window_s=0.0 if self._switch_at is None else max(0.0, elapsed - self._switch_at),
            vm_lost=False,
        )

    def _final_state(self, result: LabResult, abort_reason: AbortReason | None, link_failed: bool) -> RunState:
        summary = result.summary
        last = result.samples[-1] if result.samples else None
        base = self._state(last, done=True, outcome=None)
        switched = result.post_copy_switch_at_s is not None and summary.postcopy_bytes > 0
        paused = summary.final_status == "postcopy-paused"
        if summary.final_status == "completed":
            outcome, reason = (Outcome.SWITCHED_TO_POST_COPY if switched else Outcome.COMPLETED), None
        elif summary.final_status == "cancelled":
            outcome, reason = Outcome.ABORTED, abort_reason or AbortReason.COMPLETION_TIMEOUT
        else:
            outcome, reason = Outcome.FAILED, None
        elapsed = summary.total_time_s if summary.total_time_s is not None else base.elapsed_s
        return replace(
            base,
            elapsed_s=max(elapsed, base.elapsed_s),
            remaining_bytes=0.0 if outcome.succeeded else base.remaining_bytes,
            transferred_bytes=float(summary.transferred_bytes),
            rounds=max(0, summary.dirty_syncs - 1),
            throttle=summary.max_throttle_pct / 100 if not outcome.succeeded else 0.0,
            outcome=outcome,
            abort_reason=reason,
            downtime_s=summary.downtime_s or 0.0,
            risk_window_s=result.postcopy_phase_s or base.risk_window_s,
            vm_lost=paused and link_failed,
        )
