"""What a technique changes in the round engine: a few numbers, computed once per run by the family modules.

The engine (`MigrationRun`, stepper.py and the layers under it) runs the same loop for every technique: passes of
"payload" bytes sent at a logical rate, pages dirtied into a hot and a cold class while a pass runs, a stop rule per
profile, then stop-and-copy or a post-copy switch.  A family module (precopy, compression, workingset, tracereplay)
returns a `Mechanics` saying what pass 0 sends, what later passes send, at which wire cost and rate cap.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Mechanics(NamedTuple):
    """Immutable (a NamedTuple rather than a frozen dataclass: built for every prediction, it must be cheap)."""

    first_payload_bytes: float  # logical bytes of pass 0
    hot_cap_bytes: float  # most bytes dirty at once in the hot class (W, or M without a working set)
    cold_cap_bytes: float = 0.0  # the other M - W bytes
    hot_share: float = 1.0  # share of the writes landing in the hot class
    held_bytes: float = 0.0  # never sent by the passes, carried by the stop-and-copy (working-set hold-back)
    resend_hot: bool = True  # False: dirtied hot pages are held back too (working-set)
    first_wire_factor: float = 1.0  # wire bytes per logical byte, pass 0
    later_wire_factor: float = 1.0  # wire bytes per logical byte, passes >= 1 (ignored when xbzrle_cache_bytes > 0)
    first_rate_cap_bps: float = math.inf  # logical-rate cap of pass 0 (compressor throughput)
    later_rate_cap_bps: float = math.inf  # logical-rate cap of passes >= 1 (compressor throughput, log replay)
    xbzrle_cache_bytes: float = 0.0  # > 0: later passes hit a page cache of this size
    xbzrle_delta_ratio: float = 1.0
    xbzrle_hot_set_bytes: float | None = None  # the set the cache must hold (W); None: the pass's own payload
    log_rate_bps: float | None = None  # trace-replay: later passes carry logs produced at this rate (uncapped)

    def later_wire_factor_for(self, payload_bytes: float) -> float:
        """Wire bytes per logical byte of a re-send pass carrying `payload_bytes`."""
        if self.xbzrle_cache_bytes <= 0.0:
            return self.later_wire_factor
        hot = self.xbzrle_hot_set_bytes if self.xbzrle_hot_set_bytes is not None else payload_bytes
        hit = 1.0 if hot <= self.xbzrle_cache_bytes else self.xbzrle_cache_bytes / hot
        return hit / self.xbzrle_delta_ratio + (1.0 - hit)
