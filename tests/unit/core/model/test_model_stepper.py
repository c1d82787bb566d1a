"""MigrationRun: stepping equals predicting, KubeVirt's timeouts and actions, external events."""

from __future__ import annotations

import itertools
import math

import pytest

from livemig.core.errors import SpecError
from livemig.core.model import (
    LinkParams,
    MigrationMode,
    MigrationRun,
    MigrationSettings,
    Phase,
    StopRules,
    VmParams,
    predict,
)
from livemig.core.model.precopy import qemu_sync_carry_bytes
from livemig.core.vocabulary import AbortReason, Outcome, Technique

GIB = 2**30
MIB = 2**20
GBIT = 125e6


def run_in_steps(run: MigrationRun, dt: float, limit_s: float = 1e6) -> None:
    while not run.done:
        assert run.state().elapsed_s < limit_s, "run did not end"
        run.advance(dt)


CASES = [
    (Technique.PRE_COPY, VmParams(GIB, 0.4 * GBIT), MigrationSettings()),
    (Technique.PRE_COPY, VmParams(2 * GIB, 2 * GBIT), MigrationSettings()),  # aborts at the completion timeout
    (Technique.PRE_COPY, VmParams(GIB, 0.8 * GBIT), MigrationSettings(stop_rules=StopRules.XEN)),
    (Technique.POST_COPY, VmParams(4 * GIB, 3 * GBIT), MigrationSettings()),
    (Technique.AUTO_CONVERGE, VmParams(GIB, 2 * GBIT), MigrationSettings()),
    (Technique.XBZRLE, VmParams(GIB, 1.5 * GBIT, working_set_bytes=128 * MIB), MigrationSettings()),
    (Technique.ADAPTIVE_COMPRESSION, VmParams(GIB, 0.5 * GBIT), MigrationSettings(stop_rules=StopRules.XEN)),
    (
        Technique.WORKING_SET,
        VmParams(GIB, GBIT, working_set_bytes=64 * MIB, hot_write_fraction=0.9),
        MigrationSettings(stop_rules=StopRules.XEN),
    ),
    (Technique.TRACE_REPLAY, VmParams(GIB, GBIT), MigrationSettings(round_overhead_s=0.05, resume_overhead_s=0.02)),
]


@pytest.mark.parametrize(("technique", "vm", "settings"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("dt", [0.37, 5.0])
def test_stepping_in_any_chunks_gives_the_prediction(technique, vm, settings, dt) -> None:  # type: ignore[no-untyped-def]
    link = LinkParams(GBIT)
    whole = predict(technique, vm, link, settings)
    run = MigrationRun(technique, vm, link, settings)
    run_in_steps(run, dt)
    stepped = run.prediction()
    assert stepped.outcome == whole.outcome
    assert stepped.abort_reason == whole.abort_reason
    assert stepped.rounds == whole.rounds
    assert stepped.total_time_s == pytest.approx(whole.total_time_s, rel=1e-9)
    assert stepped.downtime_s == pytest.approx(whole.downtime_s, rel=1e-6, abs=1e-9)
    assert stepped.transferred_bytes == pytest.approx(whole.transferred_bytes, rel=1e-9)
    assert stepped.final_throttle == whole.final_throttle


@pytest.mark.parametrize("dt", [0.1, 0.3, 0.7, 1.0])
def test_a_pass_ending_exactly_at_the_switch_time_ends_first_whatever_the_chunks(dt: float) -> None:
    # 1 s pass 0 (memory = bandwidth), idle guest, post-copy switch at ceil(0.13 GB) x 1 s = 1 s: pre-copy completes.
    vm, link = VmParams(132729656.0, 0.0), LinkParams(132729656.0)
    whole = predict(Technique.POST_COPY, vm, link)
    run = MigrationRun(Technique.POST_COPY, vm, link, MigrationSettings())
    run_in_steps(run, dt)
    assert whole.outcome is Outcome.COMPLETED
    assert run.prediction().outcome is Outcome.COMPLETED


def test_completion_timeout_uses_decimal_gigabytes_rounded_up() -> None:
    # 8 GiB = 8.59 GB -> ceil = 9 -> 9 x 150 s = 1350 s (kubevirt.md §3.2).
    p = predict(Technique.PRE_COPY, VmParams(8 * GIB, 3 * GBIT), LinkParams(GBIT))
    assert p.outcome is Outcome.ABORTED
    assert p.abort_reason is AbortReason.COMPLETION_TIMEOUT
    assert p.total_time_s == pytest.approx(1350.0)
    assert p.downtime_s == 0.0


def test_identical_passes_are_skipped_without_changing_the_result() -> None:
    # A 64 MiB hot set rewritten faster than the link: ~1,000 identical passes before the 300 s timeout.  QEMU syncs
    # each pass with `carry` bytes still unsent (R·(0.3 - 0.05) s), so a pass sends 64 MiB - carry.
    vm = VmParams(GIB, 4 * GBIT, working_set_bytes=64 * MIB)
    p = predict(Technique.PRE_COPY, vm, LinkParams(GBIT))
    assert p.abort_reason is AbortReason.COMPLETION_TIMEOUT
    assert p.total_time_s == pytest.approx(300.0)
    carry = qemu_sync_carry_bytes(GBIT, 0.3, 1.0)
    assert carry == pytest.approx(GBIT * 0.25)
    # Pass 0's remainder is mostly cold memory (split like the pass: W/M hot); it rides along, shrinking by
    # carry/payload per pass, until every pass is the hot set: W + cold - carry sent per pass.
    t, rounds, sent, hot, cold = (GIB - carry) / GBIT, 1, GIB - carry, 64 * MIB, carry * (1 - 64 * MIB / GIB)
    while t + (hot + cold - carry) / GBIT <= 300.0:
        t += (hot + cold - carry) / GBIT
        sent += hot + cold - carry
        rounds += 1
        cold = carry * cold / (hot + cold)
    assert p.rounds == rounds
    per_pass = 64 * MIB - carry
    assert sent <= p.transferred_bytes <= sent + per_pass + 1  # plus the pass cut by the timeout
    # Stepping by a third of a pass leaves no whole pass to skip: every pass is simulated, with the same result.
    run = MigrationRun(Technique.PRE_COPY, vm, LinkParams(GBIT), MigrationSettings(), record_timeline=False)
    run_in_steps(run, (64 * MIB / GBIT) / 3)
    one_by_one = run.prediction()
    assert one_by_one.rounds == p.rounds
    assert one_by_one.transferred_bytes == pytest.approx(p.transferred_bytes, rel=1e-9)


def test_progress_timeout_aborts_when_nothing_moves() -> None:
    run = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 0.5 * GBIT), LinkParams(GBIT), MigrationSettings())
    run.advance(2.0)
    state = run.advance(149.0, bandwidth_bps=0.0)
    assert not state.done
    state = run.advance(2.0)
    assert state.done
    assert state.outcome is Outcome.ABORTED
    assert state.abort_reason is AbortReason.PROGRESS_TIMEOUT
    assert state.elapsed_s == pytest.approx(152.0)


def test_post_copy_switches_at_ceil_gb_seconds_and_reports_its_risk_window() -> None:
    vm = VmParams(8 * GIB, 3 * GBIT)
    p = predict(Technique.POST_COPY, vm, LinkParams(GBIT))
    assert p.outcome is Outcome.SWITCHED_TO_POST_COPY
    assert p.switch_time_s == pytest.approx(9.0)
    assert p.risk_window_s == pytest.approx(p.total_time_s - 9.0)
    # Everything not yet up to date is pulled once: never more than memory after the switch.
    assert p.transferred_bytes <= 9.0 * GBIT + 8 * GIB + 1
    assert p.degradation.fault_stall_s == pytest.approx(0.5 * p.risk_window_s)


def test_workload_disruption_without_post_copy_pauses_the_guest() -> None:
    settings = MigrationSettings(allow_workload_disruption=True, completion_timeout_per_gib=10)
    p = predict(Technique.PRE_COPY, VmParams(GIB, 3 * GBIT), LinkParams(GBIT), settings)
    assert p.outcome is Outcome.PAUSED
    assert p.downtime_s == pytest.approx(p.total_time_s - 20.0)
    assert p.total_time_s < 40.0  # done before the doubled limit


def test_kubevirt_config_with_post_copy_switches_at_the_completion_timeout() -> None:
    settings = MigrationSettings(allow_post_copy=True, completion_timeout_per_gib=5)
    run = MigrationRun.for_kubevirt_config(VmParams(GIB, 3 * GBIT), LinkParams(GBIT), settings)
    state = run.advance(10.5)
    assert state.mode is MigrationMode.POST_COPY
    assert state.phase is Phase.POST_COPY
    run_in_steps(run, 1.0)
    p = run.prediction()
    assert p.outcome is Outcome.SWITCHED_TO_POST_COPY
    assert p.switch_time_s == pytest.approx(10.0)


def test_link_failure_after_the_switch_loses_the_vm_before_it_does_not() -> None:
    vm, link = VmParams(4 * GIB, 3 * GBIT), LinkParams(GBIT)
    before = MigrationRun(Technique.POST_COPY, vm, link, MigrationSettings())
    before.advance(2.0)
    assert before.fail_link()
    assert before.state().outcome is Outcome.FAILED
    assert not before.state().vm_lost

    after = MigrationRun(Technique.POST_COPY, vm, link, MigrationSettings())
    after.advance(6.0)
    assert after.state().mode is MigrationMode.POST_COPY
    assert not after.abort()  # no cancel once post-copy began
    assert after.fail_link()
    state = after.state()
    assert state.outcome is Outcome.FAILED
    assert state.vm_lost
    assert state.done


def test_abort_request_ends_pre_copy_cleanly() -> None:
    run = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 0.5 * GBIT), LinkParams(GBIT), MigrationSettings())
    run.advance(3.0)
    assert run.abort()
    state = run.state()
    assert state.outcome is Outcome.ABORTED
    assert state.abort_reason is AbortReason.REQUESTED
    assert state.downtime_s == 0.0
    assert not run.abort()


def test_external_post_copy_switch_and_dirty_rate_changes() -> None:
    run = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 3 * GBIT), LinkParams(GBIT), MigrationSettings())
    run.advance(3.0)
    assert run.start_post_copy()
    assert run.state().mode is MigrationMode.POST_COPY
    run_in_steps(run, 0.5)
    assert run.prediction().outcome is Outcome.SWITCHED_TO_POST_COPY

    calm = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 3 * GBIT), LinkParams(GBIT), MigrationSettings())
    calm.advance(20.0)
    calm.advance(30.0, dirty_rate_bps=0.0)  # the guest goes idle: the next pass is empty
    assert calm.state().outcome is Outcome.COMPLETED


def test_wall_clock_cap_ends_a_run_as_not_converged() -> None:
    settings = MigrationSettings(wall_clock_cap_s=60.0)
    p = predict(Technique.PRE_COPY, VmParams(8 * GIB, 3 * GBIT), LinkParams(GBIT), settings)
    assert p.outcome is Outcome.NOT_CONVERGED
    assert p.total_time_s == pytest.approx(60.0)


def test_auto_converge_degradation_is_throttle_times_duration() -> None:
    p = predict(Technique.AUTO_CONVERGE, VmParams(GIB, 2 * GBIT), LinkParams(GBIT))
    steps = [*p.throttle_steps, (p.total_time_s, p.final_throttle)]
    integral = sum(v0 * (t1 - t0) for (t0, v0), (t1, _) in itertools.pairwise(steps))
    # The throttle is off during the stop-and-copy (the guest is stopped).
    assert p.degradation.throttle_cpu_s == pytest.approx(integral - p.final_throttle * p.downtime_s, rel=1e-6)
    assert p.degradation.max_slowdown == p.final_throttle


def test_xen_rate_limiter_first_round_and_no_timeouts() -> None:
    from livemig.core.model import XenParams, XenRateLimiter

    settings = MigrationSettings(stop_rules=StopRules.XEN, xen=XenParams(rate_limiter=XenRateLimiter()))
    run = MigrationRun(Technique.PRE_COPY, VmParams(GIB, 0.0), LinkParams(10 * GBIT), settings)
    state = run.advance(1.0)
    assert state.transfer_rate_bps == pytest.approx(100e6 / 8)


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"memory_bytes": 0, "dirty_rate_bps": 1.0}, "memory_bytes"),
        ({"memory_bytes": GIB, "dirty_rate_bps": -1.0}, "dirty_rate_bps"),
        ({"memory_bytes": GIB, "dirty_rate_bps": 1.0, "working_set_bytes": 2 * GIB}, "working_set_bytes"),
        ({"memory_bytes": GIB, "dirty_rate_bps": math.nan}, "dirty_rate_bps"),
    ],
)
def test_bad_vm_profile_names_the_field(kwargs, path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as err:
        VmParams(**kwargs)
    assert err.value.path == path


def test_zero_bandwidth_link_is_rejected() -> None:
    with pytest.raises(SpecError) as err:
        LinkParams(0.0)
    assert err.value.path == "bandwidth_bps"


@pytest.mark.parametrize(
    ("technique", "config"),
    [
        (Technique.PRE_COPY, MigrationSettings()),
        (Technique.AUTO_CONVERGE, MigrationSettings(allow_auto_converge=True)),
        # livemig's post-copy policy: allowPostCopy with completionTimeoutPerGiB = post_copy_timeout_per_gib (1)
        (Technique.POST_COPY, MigrationSettings(allow_post_copy=True, completion_timeout_per_gib=1)),
    ],
)
@pytest.mark.parametrize("dirty", [0.2 * GBIT, 0.9 * GBIT, 3 * GBIT])
def test_what_livemig_actuates_is_what_the_simulated_kubevirt_runs(technique, config, dirty) -> None:  # type: ignore[no-untyped-def]
    # predict() models the technique as livemig actuates it; the simulator runs KubeVirt's configuration literally.
    # With the configuration livemig writes for that technique, both must be the same migration.
    vm, link = VmParams(4 * GIB, dirty), LinkParams(GBIT)
    predicted = predict(technique, vm, link, MigrationSettings(), timeline=False)
    simulated = MigrationRun.for_kubevirt_config(vm, link, config).run_to_end()
    assert simulated.outcome == predicted.outcome
    assert simulated.abort_reason == predicted.abort_reason
    assert simulated.total_time_s == pytest.approx(predicted.total_time_s, rel=1e-12)
    assert simulated.downtime_s == pytest.approx(predicted.downtime_s, rel=1e-12, abs=1e-12)
    assert simulated.transferred_bytes == predicted.transferred_bytes
