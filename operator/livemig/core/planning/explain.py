"""How the planners word their decisions: the numbers they decided with, formatted one way everywhere.

A move's `reason` reads "why this VMI; why this target; why this place in the order", each part built from the
values the planner compared (utilisation against thresholds, the target's fill after the move, the link, the
predicted time that orders the moves); the technique's reason comes from the selector with the predictions it
compared (livemig.core.model.select).
"""

from __future__ import annotations


def pct(fraction: float) -> str:
    """0.876 -> '88%'."""
    return f"{100 * fraction:.0f}%"


def pct_vs(x: float, limit: float) -> tuple[str, str]:
    """`x` and `limit` as percentages, with one decimal when whole percents would look equal."""
    a, b = pct(x), pct(limit)
    if a == b and x != limit:
        return f"{100 * x:.1f}%", f"{100 * limit:.1f}%"
    return a, b


def size(n: float) -> str:
    """Bytes in binary units, one decimal: '16.9 GiB'."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def rate(bps: float) -> str:
    """Bytes/s as bits/s, as links are named: '10 Gbit/s'."""
    bits = 8 * bps
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.0f} bit/s"


def secs(s: float) -> str:
    if s >= 60:
        return f"{s / 60:.1f} min"
    if s >= 1:
        return f"{s:.1f} s"
    return f"{s * 1000:.0f} ms"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
