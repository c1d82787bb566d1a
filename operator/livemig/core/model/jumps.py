"""`PassJumps`: three exact jumps over pre-copy passes, so that a prediction costs O(distinct passes), not O(time).

Each is taken only where the ordinary loop (`_step_pre_copy`, `_end_of_pass`) would run the same passes; where a jump
cannot show that, it returns without changing the run and the loop runs the pass.  docs/model.md ("Speed") says when
each one applies; the tests step the same runs in small chunks, where no jump can happen, and compare.
"""

from __future__ import annotations

import math

from livemig.core.model import autoconverge
from livemig.core.model.run_base import RunBase

_STEADY_RTOL = 1e-9
_SAWTOOTH_POINTS_MAX = 2000  # skipped passes drawn in the timeline at most


class PassJumps(RunBase):
    """What a run tries each time a pre-copy pass starts (`_skip_passes`, from `_end_of_pass`)."""

    __slots__ = ()

    def _skip_passes(self, t_stop: float, previous_payload: float) -> None:
        """Try the jump that fits the pass just started: no smaller than the last, it may be a fixed point; smaller,
        the passes may shrink geometrically."""
        if self._pass_payload >= previous_payload * (1.0 - _STEADY_RTOL):  # not shrinking: maybe a fixed point
            self._skip_identical_passes(t_stop)
        else:
            self._skip_geometric_passes(t_stop)

    def _skip_identical_passes(self, t_stop: float) -> None:
        """If the pass just started will leave exactly the same dirty set (a fixed point: a capped or lambda = 1
        pre-copy that nothing will change), advance over whole identical passes up to just before the next event."""
        settings = self._settings
        if not self._is_qemu or self._paused:
            return
        if self._throttle_on and self._throttle < settings.throttle.maximum:
            self._skip_capped_throttle_climb(t_stop)
            return
        mech = self._mech
        if mech.log_rate_bps is not None:
            return
        if mech.xbzrle_cache_bytes > 0.0 and self._rounds <= 1:
            return  # XBZRLE's cache-filling pass: the next pass has another wire factor
        payload = self._pass_left
        wire_rate = self._wire_rate()
        send = wire_rate / self._pass_wf
        if mech.later_rate_cap_bps < send:
            send = mech.later_rate_cap_bps
        if send <= 0.0 or payload <= 0.0:
            return
        carry = self._carry(wire_rate, self._pass_wf)
        if carry >= payload:
            return
        per_pass = payload - carry  # what each pass sends before QEMU syncs it
        tau = self._gap_left + per_pass / send
        writes = self._dirty_rate * self._write_share(self._throttle) * tau
        share = self._pass_hot_frac if carry > 0.0 else 1.0
        hot = min(mech.hot_cap_bytes, carry * share + writes * mech.hot_share)
        cold = carry * (1.0 - share) + writes * (1.0 - mech.hot_share)
        cold = min(mech.cold_cap_bytes, cold) if mech.cold_cap_bytes > 0.0 else 0.0
        next_payload = hot + cold if mech.resend_hot else cold
        if abs(next_payload - payload) > _STEADY_RTOL * payload:
            return
        if carry > 0.0 and abs(hot / payload - share) > _STEADY_RTOL:
            return  # the remainder's split between the classes still moves
        horizon = min(self._deadline_t, self._cap_t, t_stop)
        if math.isinf(horizon):
            return
        k = math.floor((horizon - self._t) / tau) - 1
        if k < 1:
            return
        span = k * tau
        wire = k * per_pass * self._pass_wf
        if self._timeline is not None and k <= _SAWTOOTH_POINTS_MAX:
            held = mech.held_bytes
            for i in range(1, k + 1):  # draw the skipped passes (for --plot); the physics does not need them
                self._timeline.append((self._t + i * tau, carry + held))
                self._timeline.append((self._t + i * tau, payload + held))
        self._rounds += k
        self._sent += k * per_pass
        self._wire += wire
        self._throttle_cpu_s += self._throttle * span
        self._t += span
        self._pass_start_t = self._t
        self._last_progress_t = self._t
        self._prev_pass_sent = per_pass
        self._period_start_t = self._t
        self._period_dirty = 0.0
        self._period_wire = 0.0
        if k > _SAWTOOTH_POINTS_MAX:
            self._mark()

    def _pass_send(self) -> tuple[float, float, float, float] | None:
        """The pass under way as the jumps read it: (payload left, wire factor, wire rate, payload send rate), or
        None when nothing is being sent."""
        payload = self._pass_left
        wf = self._pass_wf
        wire_rate = self._wire_rate()
        send = wire_rate / wf
        if self._mech.later_rate_cap_bps < send:
            send = self._mech.later_rate_cap_bps
        if send <= 0.0 or payload <= 0.0:
            return None
        return payload, wf, wire_rate, send

    def _skip_capped_throttle_climb(self, t_stop: float) -> None:
        """Auto-converge while every pass is full (the dirty classes fill up before the pass ends): each pass is the
        same, each is a throttle period of its own (>= min_period_s) that counts as high (dirtied = sent), so the
        throttle rises every `periods_per_step` passes.  Jump over those passes while they stay full, exactly as the
        loop would run them, stopping before the first pass that is not full or the next event."""
        settings = self._settings
        params = settings.throttle
        mech = self._mech
        if mech.log_rate_bps is not None or self._gap_left > 0.0 or self._period_dirty != 0.0:
            return
        if self._period_start_t != self._t:
            return
        current = self._pass_send()
        if current is None:
            return
        payload, wf, wire_rate, send = current
        carry = self._carry(wire_rate, wf)
        if carry >= payload:
            return
        per_pass = payload - carry  # sent before QEMU syncs; the carried rest and the new dirt refill the pass
        tau = per_pass / send
        if tau < params.min_period_s or not autoconverge.period_is_high(per_pass, per_pass * wf, params):
            return
        hot_cap, cold_cap, share = mech.hot_cap_bytes, mech.cold_cap_bytes, mech.hot_share
        full = (hot_cap if mech.resend_hot else 0.0) + cold_cap
        if abs(full - payload) > _STEADY_RTOL * payload:
            return  # not the full, capped pass
        split = self._pass_hot_frac if carry > 0.0 else 1.0
        if carry > 0.0 and abs(split - hot_cap / payload) > _STEADY_RTOL:
            return
        carry_hot, carry_cold = carry * split, carry * (1.0 - split)
        horizon = min(self._deadline_t, self._cap_t, t_stop)
        if math.isinf(horizon):
            return
        rate = self._dirty_rate
        throttle, count, passes, throttle_cpu = self._throttle, self._high_count, 0, 0.0
        steps: list[tuple[float, float]] = []
        t = self._t
        while t + 2.0 * tau < horizon:
            writes = rate * self._write_share(throttle) * tau
            if carry_hot + writes * share < hot_cap or (
                cold_cap > 0.0 and carry_cold + writes * (1.0 - share) < cold_cap
            ):
                break  # this pass would not fill up: leave it to the loop
            t += tau
            passes += 1
            throttle_cpu += throttle * tau
            count += 1
            if count >= params.periods_per_step:
                count = 0
                throttle = autoconverge.raised_throttle(throttle, params)
                steps.append((t, throttle))
        if passes < 1:
            return
        if self._timeline is not None:
            held = mech.held_bytes
            for i in range(1, passes + 1):
                self._timeline.append((self._t + i * tau, carry + held))
                self._timeline.append((self._t + i * tau, payload + held))
        self._rounds += passes
        self._sent += passes * per_pass
        self._wire += passes * per_pass * wf
        self._throttle_cpu_s += throttle_cpu
        self._t = t
        self._throttle, self._high_count = throttle, count
        self._throttle_steps.extend(steps)
        if throttle > self._max_throttle:
            self._max_throttle = throttle
        self._pass_start_t = self._period_start_t = self._last_progress_t = t
        self._prev_pass_sent = per_pass
        ratio = 1.0 / wf
        if ratio > self._max_pass_ratio:
            self._max_pass_ratio = ratio

    def _skip_geometric_passes(self, t_stop: float) -> None:
        """In the uncapped regime every pass is the previous one times a = D(1-p)·w/R (papers.md §11: V_i = V·a^i):
        jump over the whole passes that cannot meet the stop rule or reach the next event, in closed form, and leave
        the last ones to the ordinary loop.  qemu profile, no per-pass gap, throttle unable to change."""
        if not self._is_qemu or self._paused or self._gap_left > 0.0:
            return
        mech = self._mech
        if mech.xbzrle_cache_bytes > 0.0 and (mech.xbzrle_hot_set_bytes is None or self._rounds <= 1):
            return  # the wire factor changes with the payload, or after XBZRLE's cache-filling pass
        current = self._pass_send()
        if current is None:
            return
        payload, wf, wire_rate, send = current
        throttle = self._throttle
        if mech.log_rate_bps is not None:
            inflow_hot, inflow_cold = mech.log_rate_bps * self._write_share(throttle), 0.0
        else:
            writes = self._dirty_rate * self._write_share(throttle)
            inflow_hot, inflow_cold = writes * mech.hot_share, writes * (1.0 - mech.hot_share)
        # QEMU's early sync leaves `carry` unsent in every pass (the same for all of them: rate and wire factor
        # hold), so pass i sends x·a^i with x = payload - carry, and the next pass is carry + x·a^(i+1).
        carry = self._carry(wire_rate, wf)
        if carry > 0.0 and mech.cold_cap_bytes > 0.0:
            return  # the remainder's split between the classes moves from pass to pass: leave it to the loop
        if carry >= payload:
            return
        x = payload - carry
        # Uncapped from here on: this pass's dirtying stays below both caps (and later passes are shorter).
        tau = x / send
        if mech.log_rate_bps is None and (
            carry + inflow_hot * tau >= mech.hot_cap_bytes
            or (inflow_cold > 0.0 and inflow_cold * tau >= mech.cold_cap_bytes)
        ):
            return
        a = ((inflow_hot if mech.resend_hot or mech.log_rate_bps is not None else 0.0) + inflow_cold) / send
        if not 0.0 < a < 1.0:
            return
        settings = self._settings
        if (
            self._throttle_on
            and throttle < settings.throttle.maximum
            and (inflow_hot + inflow_cold) / wire_rate > settings.throttle.trigger_threshold
        ):
            return  # the throttle may still rise
        # qemu_stop's bound on the next payload, less the carried part: after pass i the rule sees carry + x·a^(i+1).
        threshold = wire_rate * settings.downtime_limit_s - carry
        if threshold <= 0.0 or x * a <= threshold:
            return
        first_stop = math.ceil(math.log(threshold / x) / math.log(a)) - 1
        horizon = min(self._deadline_t, self._cap_t, t_stop) - self._t
        if math.isinf(horizon):
            fit = first_stop
        else:
            # passes 0..j-1 end by t + x(1 - a^j)/((1 - a)·send) < horizon
            room = 1.0 - horizon * (1.0 - a) * send / x
            fit = first_stop if room <= 0.0 else math.floor(math.log(room) / math.log(a))
        k = min(first_stop, fit) - 1
        if k < 1:
            return
        shrink = a**k
        moved = x * (1.0 - shrink) / (1.0 - a)
        span = moved / send
        if self._timeline is not None and k <= _SAWTOOTH_POINTS_MAX:
            held, t0, v = mech.held_bytes + carry, self._t, x
            for _ in range(k):
                t0 += v / send
                v *= a
                self._timeline.append((t0, held))
                self._timeline.append((t0, v + held))
        self._rounds += k
        self._sent += moved
        self._wire += moved * wf
        self._throttle_cpu_s += throttle * span
        self._t += span
        self._prev_pass_sent = x * shrink / a
        self._pass_payload = self._pass_left = carry + x * shrink
        self._pass_start_t = self._t
        self._last_progress_t = self._t
        self._period_start_t = self._t
        self._period_dirty = 0.0
        self._period_wire = 0.0
        ratio = a / wf
        if ratio > self._max_pass_ratio:
            self._max_pass_ratio = ratio
