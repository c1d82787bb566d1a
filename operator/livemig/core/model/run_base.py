"""`RunBase`: the state that every part of a `MigrationRun` works on, and the moves between its phases.

`MigrationRun` (stepper.py) is one object written in layers, each a class in a module of its own; this base holds
the fields, the phase transitions and what every step reads.  The fields are declared once, here, so that every
layer type-checks against the same slots.
"""

from __future__ import annotations

import math

from livemig.core.model import postcopy
from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import LinkParams, MigrationSettings, StopRules, VmParams
from livemig.core.model.precopy import qemu_first_sync_carry_bytes, qemu_sync_carry_bytes
from livemig.core.model.results import Phase
from livemig.core.model.techniques import Actuation, DeadlineAction, actuation, mechanics_for
from livemig.core.vocabulary import AbortReason, Outcome, Technique

# Phases as small ints inside the loop (Phase enum values at the boundary).
PRE, STOP, POST, DONE = 0, 1, 2, 3
PHASES = (Phase.PRE_COPY, Phase.STOP_AND_COPY, Phase.POST_COPY, Phase.DONE)


class RunBase:
    """The fields of one migration run, its phase transitions and the rates its steps read."""

    __slots__ = (
        "_abort_reason",
        "_bandwidth",
        "_blackout_done",
        "_cap_is_horizon",
        "_cap_t",
        "_carry_on",
        "_copy_start_t",
        "_cpu_utilization",
        "_deadline_action",
        "_deadline_t",
        "_dirty_cold",
        "_dirty_hot",
        "_dirty_rate",
        "_downtime",
        "_forced",
        "_gap_left",
        "_high_count",
        "_is_qemu",
        "_last_progress_t",
        "_limiter",
        "_limiter_rate",
        "_max_pass_ratio",
        "_max_throttle",
        "_mech",
        "_outcome",
        "_pass_hot_frac",
        "_pass_left",
        "_pass_payload",
        "_pass_sent",
        "_pass_start_t",
        "_pass_wf",
        "_pause_t",
        "_paused",
        "_period_dirty",
        "_period_start_t",
        "_period_wire",
        "_phase",
        "_post_left",
        "_prev_pass_sent",
        "_progress_timeout",
        "_resume_left",
        "_rounds",
        "_sent",
        "_settings",
        "_stall_s",
        "_stop_left",
        "_stop_start_t",
        "_switch_t",
        "_switchover_bandwidth",
        "_t",
        "_technique",
        "_throttle",
        "_throttle_cpu_s",
        "_throttle_on",
        "_throttle_steps",
        "_timeline",
        "_vm",
        "_vm_lost",
        "_wire",
    )

    def __init__(
        self,
        technique: Technique,
        vm: VmParams,
        link: LinkParams,
        settings: MigrationSettings,
        *,
        actuation_override: Actuation | None = None,
        mechanics: Mechanics | None = None,
        record_timeline: bool = True,
    ) -> None:
        """`actuation_override` / `mechanics` replace what `actuation()` / `mechanics_for()` would compute (the
        simulator's literal KubeVirt configuration; the selector re-using one computation for several runs)."""
        act = actuation_override if actuation_override is not None else actuation(technique, vm, settings)
        mech = mechanics if mechanics is not None else mechanics_for(technique, vm, link, settings)
        self._technique = technique
        self._vm = vm
        self._settings = settings
        self._mech = mech
        self._dirty_rate = vm.dirty_rate_bps
        self._bandwidth = link.bandwidth_bps
        self._switchover_bandwidth = link.switchover_bandwidth_bps
        self._cpu_utilization = vm.cpu_utilization
        self._throttle_on = act.auto_converge
        self._deadline_t = act.deadline_s if act.deadline_s is not None else math.inf
        self._deadline_action = act.on_deadline if act.deadline_s is not None else DeadlineAction.NONE
        self._progress_timeout = act.progress_timeout_s if act.progress_timeout_s is not None else math.inf
        cap = settings.wall_clock_cap_s
        self._cap_t = min(cap, settings.horizon_s) if cap is not None else settings.horizon_s
        self._cap_is_horizon = cap is None or cap > settings.horizon_s
        limiter = settings.xen.rate_limiter if settings.stop_rules is StopRules.XEN else None
        self._limiter = limiter
        self._limiter_rate = limiter.start_bps if limiter is not None else math.inf
        self._is_qemu = settings.stop_rules is StopRules.QEMU
        # QEMU syncs a pass before it drains (precopy.qemu_sync_carry_bytes); the remainder joins the next pass.
        # Not for the modelled-only techniques that hold pages back or send logs instead of pages.
        self._carry_on = self._is_qemu and mech.resend_hot and mech.log_rate_bps is None
        classes = mech.hot_cap_bytes + mech.cold_cap_bytes
        self._pass_hot_frac = mech.hot_cap_bytes / classes if mech.cold_cap_bytes > 0.0 and classes > 0.0 else 1.0
        self._max_pass_ratio = 0.0
        self._pass_payload = mech.first_payload_bytes
        self._t = 0.0
        self._phase = PRE
        self._paused = False
        self._pause_t = 0.0
        self._rounds = 0
        self._pass_left = mech.first_payload_bytes
        self._pass_wf = mech.first_wire_factor
        self._pass_start_t = 0.0
        self._pass_sent = 0.0
        self._prev_pass_sent = 0.0
        self._gap_left = 0.0
        self._dirty_hot = 0.0
        self._dirty_cold = 0.0
        self._sent = 0.0
        self._wire = 0.0
        self._throttle = 0.0
        self._max_throttle = 0.0
        self._high_count = 0
        self._period_start_t = 0.0
        self._period_dirty = 0.0
        self._period_wire = 0.0
        self._throttle_cpu_s = 0.0
        self._throttle_steps: list[tuple[float, float]] = []
        self._last_progress_t = 0.0
        self._stop_left = 0.0
        self._resume_left = 0.0
        self._stop_start_t = 0.0
        self._copy_start_t: float | None = None
        self._forced = False
        self._blackout_done = False
        self._post_left = 0.0
        self._switch_t: float | None = None
        self._stall_s = 0.0
        self._downtime = 0.0
        self._outcome: Outcome | None = None
        self._abort_reason: AbortReason | None = None
        self._vm_lost = False
        self._timeline: list[tuple[float, float]] | None = [(0.0, self._remaining())] if record_timeline else None

    # ----------------------------------------------------------------------------------------- what every step uses

    def _write_share(self, throttle: float) -> float:
        """Share of the guest's writes left under `throttle`: it takes vCPU time, which slows a writer that needs
        only u of its vCPU once 1 - throttle < u (u = 1: CPU-bound, the classic 1 - throttle)."""
        u = self._cpu_utilization
        return 1.0 - throttle if u >= 1.0 else min(1.0, (1.0 - throttle) / u)

    def _carry(self, wire_rate: float, wire_factor: float) -> float:
        """Logical bytes the current pass still holds when QEMU syncs (0: the pass drains, as in Xen)."""
        if not self._carry_on:
            return 0.0
        if self._rounds == 0 and self._vm.zero_bytes > 0.0:
            return qemu_first_sync_carry_bytes(wire_rate, self._settings.downtime_limit_s, self._vm.zero_bytes)
        return qemu_sync_carry_bytes(wire_rate, self._settings.downtime_limit_s, wire_factor)

    def _remaining(self) -> float:
        phase = self._phase
        if phase == PRE:
            return self._pass_left + self._mech.held_bytes
        if phase == STOP:
            return self._stop_left
        if phase == POST:
            return self._stop_left + self._post_left
        return 0.0

    def _wire_rate(self) -> float:
        bandwidth = self._bandwidth
        limiter = self._limiter_rate
        return limiter if limiter < bandwidth and self._phase == PRE else bandwidth

    def _mark(self) -> None:
        if self._timeline is not None:
            self._timeline.append((self._t, self._remaining()))

    # -------------------------------------------------------------------------------------------- phase transitions

    def _end(self, outcome: Outcome) -> None:
        self._mark()  # what was left when it ended (0 when it completed)
        self._outcome = outcome
        self._phase = DONE

    def _finish_aborted(self, reason: AbortReason) -> None:
        self._abort_reason = reason
        self._downtime = 0.0
        self._paused = False
        self._end(Outcome.ABORTED)

    def _pause(self) -> bool:
        """KubeVirt's workload-disruption pause, asked for by the caller (`pause()`) or taken at the deadline."""
        if self._phase != PRE or self._paused:
            return False
        self._paused = True
        self._pause_t = self._t
        return True

    def _switch(self) -> None:
        """Post-copy switch: the guest stops for its state, resumes on the target, the rest is pulled once."""
        mech = self._mech
        # Switching during pass 0 (KubeVirt's usual case): a page dirtied since the start that the pass has not
        # reached yet goes out once anyway, so only the dirtied pages in the part already sent are extra (writes
        # spread uniformly over memory).  Later passes keep the plain sum, capped at memory below.
        first = mech.first_payload_bytes
        unsent_share = min(1.0, self._pass_left / first) if self._rounds == 0 and first > 0.0 else 0.0
        self._post_left = postcopy.post_copy_bytes(
            self._pass_left * self._pass_wf,
            (self._dirty_hot + self._dirty_cold) * (1.0 - unsent_share),
            mech.held_bytes,
            self._vm.memory_bytes * mech.first_wire_factor,  # zero pages cost a marker here too
        )
        self._switch_t = self._t
        self._stop_left = self._vm.state_bytes
        self._resume_left = self._settings.resume_overhead_s
        self._stop_start_t = self._t
        self._phase = POST
        self._mark()

    def _enter_stop_and_copy(self, payload: float, wire_factor: float, forced: bool) -> None:
        self._stop_left = (payload + self._mech.held_bytes) * wire_factor + self._vm.state_bytes
        self._resume_left = self._settings.resume_overhead_s
        self._stop_start_t = self._t
        self._copy_start_t = self._t
        self._forced = forced
        self._phase = STOP
        self._mark()
