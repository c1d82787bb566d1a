"""Working-set prediction (Zaw & Thein 2012: LRU cache + splay tree).

The predicted writable working set W is held back: pass 0 sends the other M - W bytes, later passes re-send only the
dirtied pages outside W, and the stop-and-copy carries W plus the last dirty pages (downtime ~ (W + S)/R).  The stop
rule is tested on the iterative payload (the held set is known to be hot).  Without a known W the technique is plain
pre-copy (nothing to hold back).
"""

from __future__ import annotations

from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import VmParams
from livemig.core.model.precopy import precopy_mechanics


def working_set_mechanics(vm: VmParams) -> Mechanics:
    base = precopy_mechanics(vm)
    wss = vm.working_set_bytes
    if wss is None:
        return base
    return base._replace(first_payload_bytes=vm.memory_bytes - wss, held_bytes=wss, resend_hot=False)
