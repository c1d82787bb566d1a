"""`MigrationRun`: the one implementation of the migration physics, stepped in (simulated) time.

`predict()` runs it to the end; the KubeVirt simulator advances it with its own clock, feeding the dirty rate and
bandwidth of the moment and external events (post-copy switch, pause, abort, link failure).  KubeVirt's completion
and progress timeouts (qemu profile) are applied inside the run, so the simulator and `predict` cannot disagree.

The engine is event driven: between two events (end of a pass, a deadline, the end of `advance`) every quantity
changes linearly, so each segment is integrated exactly.  A pre-copy run that has reached a fixed point (every pass
identical, nothing changing) jumps over the identical passes to the next deadline, so a prediction costs O(number of
distinct passes), not O(time).

The run is one object written in layers, one module each: `RunBase` (run_base.py: its fields and phase transitions),
`PassJumps` (jumps.py), `RunSteps` (steps.py: one step of each phase) and, here, what callers use: advancing it,
external events, its state and its prediction.
"""

from __future__ import annotations

import math

from livemig.core.model.params import LinkParams, MigrationSettings, VmParams
from livemig.core.model.results import Degradation, MigrationMode, Prediction, RunState
from livemig.core.model.run_base import DONE, PHASES, POST, PRE, STOP
from livemig.core.model.steps import RunSteps
from livemig.core.model.techniques import kubevirt_actuation
from livemig.core.vocabulary import AbortReason, Outcome, Technique

_NO_DEGRADATION = Degradation()


class MigrationRun(RunSteps):
    """One migration in progress.  Not thread-safe; deterministic; no clock of its own.  Built with `RunBase`'s
    arguments: technique, VM, link, settings."""

    __slots__ = ()

    @classmethod
    def for_kubevirt_config(cls, vm: VmParams, link: LinkParams, settings: MigrationSettings) -> MigrationRun:
        """A run that does what KubeVirt does with `settings` as its migration configuration (for the simulator)."""
        technique = Technique.AUTO_CONVERGE if settings.allow_auto_converge else Technique.PRE_COPY
        return cls(technique, vm, link, settings, actuation_override=kubevirt_actuation(vm, settings))

    # ----------------------------------------------------------------------------------------------- public API

    @property
    def technique(self) -> Technique:
        return self._technique

    @property
    def done(self) -> bool:
        return self._phase == DONE

    @property
    def max_pass_dirty_ratio(self) -> float:
        """Largest (bytes dirtied during a pass) / (bytes sent in it) so far: auto-converge's trigger compares the
        same ratio, summed over >= 1 s periods, with its threshold (0.5), so below it the throttle never starts."""
        return self._max_pass_ratio

    @property
    def stop_and_copy_started_s(self) -> float | None:
        """When the guest was stopped for the final copy (None if that did not happen)."""
        return self._copy_start_t

    def advance(
        self, dt_s: float, *, dirty_rate_bps: float | None = None, bandwidth_bps: float | None = None
    ) -> RunState:
        """Run `dt_s` more seconds; a given dirty rate or bandwidth holds from now on (until changed again)."""
        if not dt_s >= 0 or math.isinf(dt_s):
            raise ValueError(f"dt_s must be a finite non-negative number, got {dt_s!r}")
        if dirty_rate_bps is not None:
            if not dirty_rate_bps >= 0:
                raise ValueError(f"dirty_rate_bps must be >= 0, got {dirty_rate_bps!r}")
            self._dirty_rate = dirty_rate_bps
        if bandwidth_bps is not None:
            if not bandwidth_bps >= 0:
                raise ValueError(f"bandwidth_bps must be >= 0, got {bandwidth_bps!r}")
            self._bandwidth = bandwidth_bps
        self._run_until(self._t + dt_s)
        return self.state()

    def run_to_end(self) -> Prediction:
        """Run until the migration ends (predict)."""
        self._run_until(math.inf)
        return self.prediction()

    def start_post_copy(self) -> bool:
        """Switch to post-copy now (KubeVirt's MigrateStartPostCopy).  False if not in pre-copy."""
        if self._phase != PRE:
            return False
        self._switch()
        return True

    def pause(self) -> bool:
        """KubeVirt's workload-disruption pause: the guest stops (dirties nothing) while pre-copy goes on."""
        return self._pause()

    def abort(self, reason: AbortReason = AbortReason.REQUESTED) -> bool:
        """Cancel the migration; the source keeps running.  Refused (False) once stop-and-copy or post-copy began."""
        if self._phase != PRE:
            return False
        self._finish_aborted(reason)
        return True

    def fail_link(self) -> bool:
        """The migration link breaks.  Before the post-copy switch the source keeps the VM (a clean failure);
        after it the VM's state is split between hosts and the VM is lost (KubeVirt does not recover post-copy)."""
        if self._phase == DONE:
            return False
        self._vm_lost = self._phase == POST
        if self._phase == STOP or self._paused:
            self._downtime = self._t - (self._pause_t if self._paused else self._stop_start_t)
        self._end(Outcome.FAILED)
        return True

    def state(self) -> RunState:
        phase = self._phase
        if phase == POST or (phase == DONE and self._switch_t is not None):
            mode = MigrationMode.POST_COPY
        elif self._paused:
            mode = MigrationMode.PAUSED
        else:
            mode = MigrationMode.PRE_COPY
        downtime = self._downtime
        if phase in (STOP, POST) and not self._blackout_done:
            downtime = self._t - (self._pause_t if self._paused else self._stop_start_t)
        elif phase == PRE and self._paused:
            downtime = self._t - self._pause_t
        running = phase == PRE and not self._paused
        return RunState(
            elapsed_s=self._t,
            phase=PHASES[phase],
            mode=mode,
            remaining_bytes=self._remaining(),
            transferred_bytes=self._wire,
            rounds=self._rounds,
            throttle=self._throttle,
            dirty_rate_bps=self._dirty_rate * self._write_share(self._throttle) if running else 0.0,
            transfer_rate_bps=self._wire_rate() if phase != DONE else 0.0,
            done=phase == DONE,
            outcome=self._outcome,
            abort_reason=self._abort_reason,
            downtime_s=downtime,
            risk_window_s=self._risk_window(),
            vm_lost=self._vm_lost,
        )

    def prediction(self) -> Prediction:
        """The figures of the run so far (final once `done`)."""
        outcome = self._outcome if self._outcome is not None else Outcome.NOT_CONVERGED
        return Prediction(
            technique=self._technique,
            total_time_s=self._t,
            downtime_s=self._downtime,
            transferred_bytes=round(self._wire),
            rounds=self._rounds,
            outcome=outcome,
            abort_reason=self._abort_reason,
            degradation=self._degradation(),
            risk_window_s=self._risk_window(),
            final_throttle=self._throttle,
            switch_time_s=self._switch_t,
            throttle_steps=tuple(self._throttle_steps),
            timeline=tuple(self._timeline) if self._timeline is not None else (),
            stopped_at_horizon_s=(
                self._cap_t
                if outcome is Outcome.NOT_CONVERGED and self._cap_is_horizon and self._t >= self._cap_t
                else None
            ),
        )

    # ----------------------------------------------------------------------------------------------- internals

    def _degradation(self) -> Degradation:
        if self._throttle_cpu_s == 0.0 and self._switch_t is None and self._max_throttle == 0.0:
            return _NO_DEGRADATION
        return Degradation(
            throttle_cpu_s=self._throttle_cpu_s,
            fault_stall_s=self._stall_s,
            max_slowdown=max(
                self._max_throttle,
                self._settings.post_copy.fault_stall_fraction if self._switch_t is not None else 0.0,
            ),
        )

    def _risk_window(self) -> float:
        return 0.0 if self._switch_t is None else self._t - self._switch_t

    def _run_until(self, t_stop: float) -> None:
        while self._phase != DONE:
            phase = self._phase
            if phase == PRE:
                if not self._step_pre_copy(t_stop):
                    return
            elif phase == STOP:
                if not self._step_transfer(t_stop, post=False):
                    return
            elif not self._step_transfer(t_stop, post=True):
                return
