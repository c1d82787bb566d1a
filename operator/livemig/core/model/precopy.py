"""Pre-copy (Clark et al. 2005; papers.md §11) and the two stop-rule profiles.

Pass 0 sends all memory M (zero pages Z as markers: M - Z on the wire); every later pass re-sends what was dirtied
during the previous one,
V_i = min(W, D·t_{i-1}) (W = M without a writable working set), at the link rate R.

- `qemu` (KubeVirt/QEMU): stop-and-copy once the dirty bytes found at a sync fit the downtime limit,
  pending <= R · downtime-limit (QEMU `migration_iteration_run`); KubeVirt's timeouts live in the stepper.
  QEMU syncs its dirty bitmap before a pass has drained: as soon as the bytes still to send fall under that
  threshold (`qemu_sync_carry_bytes`), so each pass leaves a remainder that the next pass carries.
- `xen` (libxc xc_domain_save.c): stop when fewer than 50 pages are dirty, after 30 rounds, once more than 3·M has
  been sent, or (rate limiter on) when a round sent more than the one before at the maximum rate.
"""

from __future__ import annotations

from enum import IntEnum

from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import VmParams, XenParams, XenRateLimiter


class Stop(IntEnum):
    NO = 0
    CONVERGED = 1  # the profile's size rule: outcome completed
    FORCED = 2  # a cap (rounds, data, rate): outcome forced-stop


# QEMU ram.c: a zero page goes out as its 8-byte offset|RAM_SAVE_FLAG_ZERO word plus one byte, not 4 KiB.
ZERO_PAGE_WIRE_BYTES = 9


def first_pass_wire_factor(vm: VmParams) -> float:
    """Wire bytes per logical byte of pass 0: the zero pages (Z) cost a marker each, the rest a full page."""
    memory = vm.memory_bytes
    zero = min(vm.zero_bytes, memory)
    return (memory - zero + zero * ZERO_PAGE_WIRE_BYTES / vm.page_size) / memory


def precopy_mechanics(vm: VmParams) -> Mechanics:
    memory = vm.memory_bytes
    wss = vm.working_set_bytes
    first_wire = first_pass_wire_factor(vm)
    if wss is None:
        return Mechanics(first_payload_bytes=memory, hot_cap_bytes=memory, first_wire_factor=first_wire)
    return Mechanics(
        first_payload_bytes=memory,
        hot_cap_bytes=wss,
        cold_cap_bytes=memory - wss,
        hot_share=vm.hot_write_fraction,
        first_wire_factor=first_wire,
    )


# QEMU migration.c: the migration thread sends in rate-limit windows of BUFFER_DELAY = 100 ms (XFER_LIMIT_RATIO =
# 1000 / BUFFER_DELAY: each window's budget is max-bandwidth x 0.1 s) and looks at its pending estimate between them.
QEMU_RATE_LIMIT_WINDOW_S = 0.1


def qemu_sync_carry_bytes(wire_rate_bps: float, downtime_limit_s: float, wire_factor: float) -> float:
    """Logical bytes a pre-copy pass still holds when QEMU syncs its dirty bitmap.

    `migration_iteration_run` reads the cheap pending estimate (the pages still marked in the bitmap) between
    windows; once it is under threshold_size = bandwidth x downtime-limit it asks for the exact figure
    (`qemu_savevm_state_pending_exact` -> ram.c `migration_bitmap_sync_precopy`), which adds the pages dirtied since
    the last sync to the ones not sent yet.  The estimate is seen once per window, so the pass is synced with
    between threshold - window and threshold left; the model takes the middle: R·d - R·(window/2), in logical bytes
    (the window's budget is in wire bytes: zero pages or XBZRLE hits let it cover more pages).
    """
    if wire_factor <= 0.0:
        return 0.0
    carry = wire_rate_bps * downtime_limit_s - wire_rate_bps * QEMU_RATE_LIMIT_WINDOW_S / 2.0 / wire_factor
    return carry if carry > 0.0 else 0.0


def qemu_first_sync_carry_bytes(wire_rate_bps: float, downtime_limit_s: float, zero_bytes: float) -> float:
    """`qemu_sync_carry_bytes` for pass 0, whose tail is the memory the guest never wrote.

    Pass 0 walks RAM in address order and the never-written pages lie above what the guest used (the lab guest:
    72 % of the last 46.8 MB of pass 0 were zero pages against 25 % of all RAM, from QEMU's `duplicate` counter).
    A zero page costs a 9-byte marker, so once the estimate is down to the zero tail, the next window sends all of
    it: the remainder at the sync is the non-zero part still above the threshold's reach, R·d - Z - R·(window/2).
    """
    carry = wire_rate_bps * downtime_limit_s - zero_bytes - wire_rate_bps * QEMU_RATE_LIMIT_WINDOW_S / 2.0
    return carry if carry > 0.0 else 0.0


def qemu_stop(pending_bytes: float, wire_rate_bps: float, downtime_limit_s: float) -> Stop:
    """QEMU: the pending dirty bytes fit the downtime limit at the measured bandwidth."""
    return Stop.CONVERGED if pending_bytes <= wire_rate_bps * downtime_limit_s else Stop.NO


def xen_stop(
    pending_bytes: float,
    rounds: int,
    sent_bytes: float,
    memory_bytes: float,
    page_size: int,
    params: XenParams,
    *,
    last_round_grew_at_max_rate: bool = False,
) -> Stop:
    """libxc's last-iteration test after a round (pages counted logically, before any compression)."""
    if pending_bytes < params.min_dirty_pages * page_size:
        return Stop.CONVERGED
    # "More than 3x": compared with a 1e-9 relative slack so that rounding (a run stepped in chunks adds its bytes
    # in pieces) cannot flip the rule at exactly 3·M.
    over_factor = sent_bytes > params.max_factor * memory_bytes * (1.0 + 1e-9)
    if rounds >= params.max_rounds or over_factor or last_round_grew_at_max_rate:
        return Stop.FORCED
    return Stop.NO


def xen_next_rate(current_bps: float, measured_dirty_bps: float, limiter: XenRateLimiter) -> float:
    """Xen's rate for the next round: dirty rate + 50 Mbit/s when dirtying outpaced the current rate, capped."""
    if measured_dirty_bps > current_bps:
        return min(limiter.maximum_bps, measured_dirty_bps + limiter.increment_bps)
    return current_bps
