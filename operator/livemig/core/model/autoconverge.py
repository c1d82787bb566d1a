"""QEMU auto-converge (the seed survey's "CPU scheduling"; Jin et al. 2011 in spirit, QEMU's algorithm in fact).

At each dirty-bitmap sync that closes a period of at least 1 s (ram.c `migration_bitmap_sync`), QEMU compares the
bytes newly dirtied in the period with the bytes transferred in it (`migration_trigger_throttle`).  On every second
period where dirtied > threshold (50 %) x transferred, the throttle starts at `initial` (20 %) or rises by
`increment` (10 %), up to `maximum` (99 %).  A throttle p makes the vCPUs sleep a fraction p of the time, so the guest
dirties D·(1 - p) (model assumption: dirtying scales with CPU time) and loses p of its throughput.
"""

from __future__ import annotations

from livemig.core.model.params import ThrottleParams


def period_is_high(dirtied_bytes: float, transferred_bytes: float, params: ThrottleParams) -> bool:
    return dirtied_bytes > transferred_bytes * params.trigger_threshold


def raised_throttle(current: float, params: ThrottleParams) -> float:
    """`mig_throttle_guest_down`: start at the initial value, then add the increment, never above the maximum."""
    if current <= 0.0:
        return min(params.initial, params.maximum)
    return min(round(current + params.increment, 10), params.maximum)


def throttle_sequence(params: ThrottleParams) -> tuple[float, ...]:
    """Every throttle value QEMU steps through: 20, 30, ..., 90, 99 % under the defaults."""
    values = [raised_throttle(0.0, params)]
    while values[-1] < params.maximum and params.increment > 0:
        values.append(raised_throttle(values[-1], params))
    return tuple(values)


def converging_throttle(dirty_rate_bps: float, rate_bps: float, params: ThrottleParams) -> float | None:
    """The first throttle in the sequence with D·(1 - p) < R (passes start shrinking); None if even the max fails."""
    if dirty_rate_bps < rate_bps:
        return 0.0
    for value in throttle_sequence(params):
        if dirty_rate_bps * (1.0 - value) < rate_bps:
            return value
    return None
