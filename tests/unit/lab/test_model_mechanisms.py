"""The two model mechanisms the lab calibration added (docs/model.md, qemu-calibration section): zero pages cost a
marker in pass 0, the stop-and-copy runs at the link's raw speed because QEMU lifts its rate cap there, and QEMU syncs
a pass once its remainder falls under the stop threshold, carrying the remainder into the next pass."""

from __future__ import annotations

import itertools

import pytest

from livemig.core.model import LinkParams, MigrationSettings, VmParams, XbzrleParams, predict
from livemig.core.model.precopy import (
    QEMU_RATE_LIMIT_WINDOW_S,
    ZERO_PAGE_WIRE_BYTES,
    first_pass_wire_factor,
    qemu_first_sync_carry_bytes,
    qemu_sync_carry_bytes,
)
from livemig.core.vocabulary import Technique

MIB = 2**20
SETTINGS = MigrationSettings(completion_timeout_per_gib=0, progress_timeout_s=0, wall_clock_cap_s=120)
LINK = LinkParams(25e6)


def _vm(zero_bytes: float = 0.0, rate_pages: float = 2000) -> VmParams:
    return VmParams(256 * MIB, rate_pages * 4096, working_set_bytes=128 * MIB, zero_bytes=zero_bytes)


def test_zero_pages_shrink_only_the_first_pass() -> None:
    assert first_pass_wire_factor(_vm()) == 1.0
    zero = 64 * MIB
    factor = first_pass_wire_factor(_vm(zero))
    assert factor == pytest.approx((192 * MIB + (64 * MIB / 4096) * ZERO_PAGE_WIRE_BYTES) / (256 * MIB))
    full = predict(Technique.PRE_COPY, _vm(), LINK, SETTINGS, timeline=False)
    sparse = predict(Technique.PRE_COPY, _vm(zero), LINK, SETTINGS, timeline=False)
    assert sparse.outcome == full.outcome == "completed"
    # Less on the wire and sooner: pass 0 is shorter, so fewer pages are dirtied behind it too.
    saved = full.transferred_bytes - sparse.transferred_bytes
    assert saved > zero * (1 - ZERO_PAGE_WIRE_BYTES / 4096) * 0.99
    assert sparse.total_time_s < full.total_time_s - (zero / LINK.bandwidth_bps) * 0.99


def test_zero_pages_not_yet_sent_cost_markers_in_post_copy_too() -> None:
    full = predict(Technique.POST_COPY, _vm(rate_pages=40000), LINK, SETTINGS, timeline=False)
    sparse = predict(Technique.POST_COPY, _vm(64 * MIB, rate_pages=40000), LINK, SETTINGS, timeline=False)
    assert full.switch_time_s == sparse.switch_time_s == 1.0
    assert sparse.transferred_bytes < full.transferred_bytes - 50 * MIB


def test_stop_and_copy_runs_at_the_raw_link_speed_without_changing_when_it_stops() -> None:
    capped = predict(Technique.PRE_COPY, _vm(), LINK, SETTINGS, timeline=False)
    raw = predict(Technique.PRE_COPY, _vm(), LinkParams(25e6, switchover_bandwidth_bps=500e6), SETTINGS, timeline=False)
    # Same passes and bytes (the stop rule uses the capped rate, as QEMU's threshold does) ...
    assert raw.rounds == capped.rounds
    assert raw.transferred_bytes == pytest.approx(capped.transferred_bytes)
    # ... but the last bytes go 20x faster, so the downtime is 20x shorter.
    assert raw.downtime_s == pytest.approx(capped.downtime_s / 20, rel=1e-6)
    assert raw.total_time_s == pytest.approx(capped.total_time_s - capped.downtime_s * 19 / 20, rel=1e-6)


def test_a_switchover_speed_below_the_cap_never_slows_the_stop_and_copy() -> None:
    capped = predict(Technique.PRE_COPY, _vm(), LINK, SETTINGS, timeline=False)
    slower = predict(Technique.PRE_COPY, _vm(), LinkParams(25e6, switchover_bandwidth_bps=1e6), SETTINGS)
    assert slower.downtime_s == pytest.approx(capped.downtime_s)


def test_post_copy_switched_in_pass_zero_sends_the_union_of_unsent_and_dirtied_pages() -> None:
    # 1 GB at 100 MB/s, 50 MB/s of writes into a 200 MB working set, switch after 1 s (KubeVirt: 1 x ceil(1 GB)).
    settings = MigrationSettings(completion_timeout_per_gib=0, progress_timeout_s=0)
    vm = VmParams(1e9, 50e6, working_set_bytes=200e6)
    prediction = predict(Technique.POST_COPY, vm, LinkParams(100e6), settings, timeline=False)
    assert prediction.switch_time_s == 1.0
    # 100 MB sent in pass 0; 900 MB unsent; of the 50 MB dirtied, 90 % lie in the unsent part (sent once anyway):
    # post-copy moves 900 + 50 x 10 % = 905 MB, not 950.
    assert prediction.transferred_bytes == pytest.approx(100e6 + 905e6)
    assert prediction.total_time_s == pytest.approx(1.0 + 9.05)


def test_xbzrle_sends_its_cache_filling_pass_whole() -> None:
    # A cache larger than the working set: every re-sent page hits, but only from pass 2 on (QEMU enables XBZRLE
    # after the first round), so pass 1 re-sends the whole dirtied working set uncompressed.
    settings = MigrationSettings(
        completion_timeout_per_gib=0, progress_timeout_s=0, xbzrle=XbzrleParams(cache_bytes=256 * MIB, delta_ratio=300)
    )
    vm = VmParams(256 * MIB, 40000 * 4096, working_set_bytes=128 * MIB)
    xbzrle = predict(Technique.XBZRLE, vm, LINK, settings, timeline=False)
    assert xbzrle.outcome == "completed"
    assert xbzrle.rounds >= 3
    # pass 0 (all memory) + pass 1 (the working set, whole) + compressed rest.
    assert xbzrle.transferred_bytes == pytest.approx(256 * MIB + 128 * MIB, rel=0.05)


def test_throttle_slows_a_light_writer_only_once_it_eats_into_its_cpu_share() -> None:
    settings = MigrationSettings(completion_timeout_per_gib=0, progress_timeout_s=0, wall_clock_cap_s=120)
    link = LinkParams(125e6)

    def run(u: float) -> tuple[float, float]:
        vm = VmParams(256 * MIB, 40000 * 4096, working_set_bytes=128 * MIB, cpu_utilization=u)
        p = predict(Technique.AUTO_CONVERGE, vm, link, settings, timeline=False)
        assert p.outcome == "completed"
        return p.total_time_s, p.final_throttle

    cpu_bound_time, cpu_bound_throttle = run(1.0)
    light_time, light_throttle = run(0.15)
    # A writer using 15 % of its vCPU keeps its full rate until the throttle passes 85 %: QEMU must climb higher.
    assert light_throttle > 0.85 > cpu_bound_throttle
    assert light_time > cpu_bound_time
    # Without auto-converge the share does not matter.
    plain = [
        predict(Technique.PRE_COPY, VmParams(256 * MIB, 2000 * 4096, cpu_utilization=u), link, settings).total_time_s
        for u in (1.0, 0.15)
    ]
    assert plain[0] == plain[1]


def test_qemu_syncs_a_pass_once_its_remainder_is_under_the_threshold_and_carries_it() -> None:
    # A hot set the guest fills faster than the link: every pass is the whole set, and QEMU syncs it with
    # carry = R·d - R·window/2 still unsent (migration_iteration_run's pending estimate, read once per window).
    link = LinkParams(125e6)
    settings = MigrationSettings(completion_timeout_per_gib=0, progress_timeout_s=0, wall_clock_cap_s=60)
    carry = qemu_sync_carry_bytes(125e6, 0.3, 1.0)
    assert carry == pytest.approx(125e6 * (0.3 - QEMU_RATE_LIMIT_WINDOW_S / 2))
    vm = VmParams(256 * MIB, 40000 * 4096, working_set_bytes=128 * MIB)
    p = predict(Technique.PRE_COPY, vm, link, settings)
    assert p.outcome == "not-converged"
    # Pass 0 sends memory less the carry; every later pass refills to the whole set and sends set - carry.
    first = (256 * MIB - carry) / 125e6
    per_pass = (128 * MIB - carry) / 125e6
    assert p.rounds == 1 + int((60 - first) / per_pass)
    syncs = [(t, v) for (t, v), (t1, v1) in zip(p.timeline, p.timeline[1:], strict=False) if t == t1 and v1 > v]
    assert all(v == pytest.approx(carry) for _, v in syncs[1:])


def test_auto_converge_counts_only_sync_periods_of_a_second_so_short_passes_slow_its_climb() -> None:
    # The lab's auto-converge_1G_high: passes of (128 MiB - carry) / R = 0.82 s are shorter than QEMU's 1 s period,
    # so only every second sync closes a period and the throttle rises every fourth sync, not every second pass.
    link = LinkParams(125e6)
    settings = MigrationSettings(completion_timeout_per_gib=0, progress_timeout_s=0, wall_clock_cap_s=60)
    vm = VmParams(256 * MIB, 40000 * 4096, working_set_bytes=128 * MIB, cpu_utilization=0.15)
    p = predict(Technique.AUTO_CONVERGE, vm, link, settings, timeline=False)
    per_pass = (128 * MIB - qemu_sync_carry_bytes(125e6, 0.3, 1.0)) / 125e6
    assert 0.5 < per_pass < 1.0
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(p.throttle_steps)]
    # (the first gap is a little longer: pass 0's cold remainder still rides along)
    assert len(gaps) >= 6
    assert all(gap == pytest.approx(4 * per_pass, rel=1e-3) for gap in gaps[:6])


def test_pass_zero_drains_through_the_zero_tail_before_qemu_looks_again() -> None:
    # The guest's never-written memory is the end of pass 0: with more of it than the threshold, pass 0 leaves
    # nothing behind, and a quiet guest stops at the first sync with only what it dirtied meanwhile.
    assert qemu_first_sync_carry_bytes(125e6, 0.3, 68e6) == 0.0
    assert qemu_first_sync_carry_bytes(125e6, 0.3, 0.0) == pytest.approx(125e6 * 0.25)
    link = LinkParams(125e6)
    quiet = _vm(zero_bytes=68e6, rate_pages=2000)
    p = predict(Technique.PRE_COPY, quiet, link, SETTINGS)
    assert p.outcome == "completed"
    assert p.rounds == 1
    dirtied = 2000 * 4096 * (p.total_time_s - p.downtime_s)
    assert p.downtime_s * 125e6 == pytest.approx(dirtied, rel=1e-6)
