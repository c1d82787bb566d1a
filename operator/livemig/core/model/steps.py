"""`RunSteps`: one step of a run in the phase it is in, from now to the next event or the caller's stop.

Pre-copy goes pass by pass; KubeVirt's completion deadline and progress timeout are events of that loop, and at each
dirty-bitmap sync the stop rules and auto-converge decide what comes next, and the jumps (jumps.py) may skip passes.
Stop-and-copy and post-copy then send what is left.
"""

from __future__ import annotations

import math

from livemig.core.model import autoconverge
from livemig.core.model.jumps import PassJumps
from livemig.core.model.precopy import Stop, qemu_stop, xen_next_rate, xen_stop
from livemig.core.model.techniques import DeadlineAction
from livemig.core.vocabulary import AbortReason, Outcome

_TIE_RTOL = 1e-12  # events closer than this (relative to the elapsed time) are simultaneous


class RunSteps(PassJumps):
    """The step of each phase; `MigrationRun._run_until` calls the one of the phase the run is in."""

    __slots__ = ()

    def _step_pre_copy(self, t_stop: float) -> bool:
        """One segment of pre-copy (to the next event or `t_stop`).  False when `t_stop` is reached."""
        t = self._t
        # Events due now, in KubeVirt's per-sample order: deadline action (post-copy/pause), progress, deadline abort.
        if t >= self._deadline_t:
            action = self._deadline_action
            if action is DeadlineAction.SWITCH_TO_POST_COPY:
                self._deadline_t = math.inf
                self._switch()
                return True
            if action is DeadlineAction.PAUSE:
                self._pause()
                self._deadline_t = 2.0 * self._deadline_t  # KubeVirt doubles the limit; past it: abort
                self._deadline_action = DeadlineAction.ABORT
                return True
            if t >= self._last_progress_t + self._progress_timeout:
                self._finish_aborted(AbortReason.PROGRESS_TIMEOUT)
                return True
            self._finish_aborted(AbortReason.COMPLETION_TIMEOUT)
            return True
        if t >= self._last_progress_t + self._progress_timeout:
            self._finish_aborted(AbortReason.PROGRESS_TIMEOUT)
            return True
        if t >= self._cap_t:
            self._end(Outcome.NOT_CONVERGED)
            return True
        if t >= t_stop:
            return False

        mech = self._mech
        gap_left = self._gap_left
        in_gap = gap_left > 0.0
        pass_wf = self._pass_wf
        bandwidth = self._bandwidth
        wire_rate = self._limiter_rate if self._limiter_rate < bandwidth else bandwidth  # = _wire_rate() in pre-copy
        if in_gap:
            send = 0.0
        else:
            cap = mech.first_rate_cap_bps if self._rounds == 0 else mech.later_rate_cap_bps
            send = wire_rate / pass_wf
            if cap < send:
                send = cap
        # Length of this segment: the first event ahead.
        dt = t_stop - t
        event_pass_end = False
        carry = 0.0
        if in_gap:
            if gap_left <= dt:
                dt = gap_left
        elif send > 0.0:
            if self._carry_on:
                carry = self._carry(wire_rate, pass_wf)
            to_send = self._pass_left - carry
            dt_pass = to_send / send if to_send > 0.0 else 0.0
            if dt_pass <= dt:
                dt = dt_pass
                event_pass_end = True
        else:
            progress_due = self._last_progress_t + self._progress_timeout - t
            if progress_due < dt:
                dt = progress_due
        # A pass that ends at a deadline (to rounding) ends first, however time was cut into advance() calls.
        tie = _TIE_RTOL * (t if t > 1.0 else 1.0)
        deadline_due = self._deadline_t - t
        if deadline_due < dt and not (event_pass_end and dt - deadline_due <= tie):
            dt = deadline_due
            event_pass_end = False
        cap_due = self._cap_t - t
        if cap_due < dt and not (event_pass_end and dt - cap_due <= tie):
            dt = cap_due
            event_pass_end = False
        if dt < 0.0:
            dt = 0.0

        # Integrate the segment (everything is linear inside it).
        throttle = self._throttle
        if in_gap:
            self._gap_left = gap_left - dt if gap_left > dt else 0.0
        else:
            sent = send * dt
            wire = sent * pass_wf
            if event_pass_end:
                self._pass_left = carry if carry < self._pass_left else self._pass_left
            else:
                left = self._pass_left - sent
                self._pass_left = left if left > 0.0 else 0.0
            self._sent += sent
            self._wire += wire
            self._pass_sent += sent
            self._period_wire += wire
            if sent > 0.0:
                self._last_progress_t = t + dt
        if not self._paused:
            if throttle:
                self._throttle_cpu_s += throttle * dt
            log_rate = mech.log_rate_bps
            if log_rate is not None:
                self._dirty_hot += log_rate * self._write_share(throttle) * dt
            else:
                writes = self._dirty_rate * self._write_share(throttle) * dt
                if writes > 0.0:
                    hot_cap = mech.hot_cap_bytes
                    hot = self._dirty_hot + writes * mech.hot_share
                    self._dirty_hot = hot if hot < hot_cap else hot_cap
                    cold_cap = mech.cold_cap_bytes
                    if cold_cap > 0.0:
                        cold = self._dirty_cold + writes * (1.0 - mech.hot_share)
                        self._dirty_cold = cold if cold < cold_cap else cold_cap
        self._t = t + dt
        if event_pass_end:
            self._end_of_pass(t_stop)
        return True

    def _end_of_pass(self, t_stop: float) -> None:
        """Dirty-bitmap sync: count the pass, maybe raise the throttle, test the stop rule, start the next pass."""
        mech = self._mech
        settings = self._settings
        self._rounds += 1
        t = self._t
        carried = self._pass_left  # not sent yet: still marked in the bitmap (QEMU's early sync)
        if carried > 0.0:
            # The remainder and the pages dirtied since the last sync form the next pass; a page in both counts
            # once, so each class stays within its cap.  The remainder splits like the pass it is the end of.
            share = self._pass_hot_frac
            hot = min(mech.hot_cap_bytes, carried * share + self._dirty_hot)
            cold = carried * (1.0 - share) + self._dirty_cold
            if cold > mech.cold_cap_bytes:
                cold = mech.cold_cap_bytes
            payload = hot + cold
            new_dirty = payload - carried if payload > carried else 0.0
        else:
            hot = self._dirty_hot
            new_dirty = hot + self._dirty_cold
            payload = new_dirty if mech.log_rate_bps is not None or mech.resend_hot else self._dirty_cold
        if payload > 0.0 and self._carry_on:
            self._pass_hot_frac = hot / payload
        if self._timeline is not None:
            self._timeline.append((t, carried + mech.held_bytes))

        if self._throttle_on and not self._paused:
            params = settings.throttle
            self._period_dirty += new_dirty
            # A period that ends a few ulps short of the minimum (time summed over chunks drifts) is complete:
            # otherwise how a run is chunked would decide when the throttle rises.
            if t - self._period_start_t >= params.min_period_s - _TIE_RTOL * max(t, 1.0):
                if autoconverge.period_is_high(self._period_dirty, self._period_wire, params):
                    self._high_count += 1
                    if self._high_count >= params.periods_per_step:
                        self._high_count = 0
                        self._throttle = autoconverge.raised_throttle(self._throttle, params)
                        self._throttle_steps.append((t, self._throttle))
                        if self._throttle > self._max_throttle:
                            self._max_throttle = self._throttle
                self._period_start_t = t
                self._period_dirty = 0.0
                self._period_wire = 0.0

        if mech.xbzrle_cache_bytes <= 0.0:
            wire_factor = mech.later_wire_factor
        elif self._rounds == 1:
            # QEMU turns XBZRLE on only after the first round (ram.c find_dirty_block): pass 1 fills the cache, so
            # every page of it misses and goes out whole; hits start with pass 2.
            wire_factor = 1.0
        else:
            wire_factor = mech.later_wire_factor_for(payload)
        wire_rate = self._wire_rate()
        if self._pass_sent > 0.0:
            ratio = new_dirty / (self._pass_sent * self._pass_wf)
            if ratio > self._max_pass_ratio:
                self._max_pass_ratio = ratio
        limiter = self._limiter
        if self._is_qemu:
            stop = qemu_stop(payload, wire_rate, settings.downtime_limit_s)
        else:
            grew_at_max = (
                limiter is not None
                and self._pass_sent > self._prev_pass_sent
                and self._rounds > 1
                and self._limiter_rate >= limiter.maximum_bps
            )
            stop = xen_stop(
                payload,
                self._rounds,
                self._sent,
                self._vm.memory_bytes,
                self._vm.page_size,
                settings.xen,
                last_round_grew_at_max_rate=grew_at_max,
            )
        if stop is not Stop.NO:
            self._dirty_hot = self._dirty_cold = 0.0
            self._enter_stop_and_copy(payload, wire_factor, forced=stop is Stop.FORCED)
            return

        pass_duration = t - self._pass_start_t
        if limiter is not None and pass_duration > 0.0:
            self._limiter_rate = xen_next_rate(self._limiter_rate, new_dirty / pass_duration, limiter)
        self._prev_pass_sent = self._pass_sent
        self._pass_sent = 0.0
        previous_payload = self._pass_payload
        self._pass_payload = payload
        self._pass_left = payload
        self._pass_wf = wire_factor
        self._pass_start_t = t
        self._dirty_hot = self._dirty_cold = 0.0
        self._gap_left = settings.round_overhead_s
        if self._timeline is not None:
            self._mark()
        self._skip_passes(t_stop, previous_payload)

    def _step_transfer(self, t_stop: float, *, post: bool) -> bool:
        """Stop-and-copy (guest stopped) or post-copy (state blackout, then pages pulled while the guest runs)."""
        t = self._t
        rate = self._bandwidth
        if self._stop_left > 0.0 or self._resume_left > 0.0:  # the guest is stopped
            if t >= t_stop:
                return False
            if self._stop_left > 0.0:
                # QEMU sends the stopped guest's last bytes without its rate cap, at the link's raw speed.
                switchover = self._switchover_bandwidth
                if switchover is not None and rate > 0.0:
                    rate = max(rate, switchover)
                if rate <= 0.0:
                    return self._stalled(t_stop)
                due = self._stop_left / rate
                if due <= t_stop - t:
                    self._wire += self._stop_left
                    self._stop_left = 0.0
                    self._t = t + due
                    return True
                self._stop_left -= rate * (t_stop - t)
                self._wire += rate * (t_stop - t)
                self._t = t_stop
                return False
            if self._resume_left <= t_stop - t:
                self._t = t + self._resume_left
                self._resume_left = 0.0
                return True
            self._resume_left -= t_stop - t
            self._t = t_stop
            return False
        if not self._blackout_done:
            self._blackout_done = True
            self._downtime = t - (self._pause_t if self._paused else self._stop_start_t)
            if not post:
                if self._paused:
                    self._end(Outcome.PAUSED)
                else:
                    self._end(Outcome.FORCED_STOP if self._forced else Outcome.COMPLETED)
                return True
            self._paused = False  # the guest runs on the target from now on
        if self._post_left > 0.0:
            if t >= t_stop:
                return False
            if rate <= 0.0:
                return self._stalled(t_stop)
            stall = self._settings.post_copy.fault_stall_fraction
            due = self._post_left / rate
            if due <= t_stop - t:
                self._wire += self._post_left
                self._post_left = 0.0
                self._stall_s += stall * due
                self._t = t + due
                return True
            self._post_left -= rate * (t_stop - t)
            self._wire += rate * (t_stop - t)
            self._stall_s += stall * (t_stop - t)
            self._t = t_stop
            return False
        self._end(Outcome.SWITCHED_TO_POST_COPY)
        return True

    def _stalled(self, t_stop: float) -> bool:
        """No bandwidth during stop-and-copy or post-copy: time passes; a run nothing can finish ends at the cap."""
        if t_stop <= self._cap_t:
            self._t = t_stop
            return False
        self._t = max(self._t, self._cap_t)
        self._end(Outcome.NOT_CONVERGED)
        return True
