"""Compression families: XBZRLE delta compression (Svärd et al. 2011; QEMU) and MECOM adaptive compression
(Jin et al. 2009).

- xbzrle: pass 0 is sent raw (the cache is empty); a re-sent page hits the cache with probability
  min(1, cache / hot set) and then costs page / delta_ratio wire bytes, a miss costs a full page.  The hot set is W
  when given, else the pass's own payload.  The effect is a step in cache size against the hot set (the lab).
- adaptive-compression: every pass compressed by ratio c; the logical rate is min(R·c, compressor throughput), so
  bytes fall by 1 - 1/c while time falls less when the compressor is the bottleneck (MECOM: -68.8 % data, -32 % time).
  Being adaptive, it does not compress when the compressor is no faster than the link (assumption).
"""

from __future__ import annotations

from livemig.core.model.mechanics import Mechanics
from livemig.core.model.params import CompressionParams, LinkParams, VmParams, XbzrleParams
from livemig.core.model.precopy import precopy_mechanics


def xbzrle_mechanics(vm: VmParams, params: XbzrleParams) -> Mechanics:
    return precopy_mechanics(vm)._replace(
        xbzrle_cache_bytes=params.cache_bytes,
        xbzrle_delta_ratio=params.delta_ratio,
        xbzrle_hot_set_bytes=vm.working_set_bytes,
    )


def adaptive_compression_mechanics(vm: VmParams, link: LinkParams, params: CompressionParams) -> Mechanics:
    """Compressed passes; when the compressor is not faster than the link, it stays off (plain pre-copy)."""
    if params.throughput_bps <= link.bandwidth_bps or params.ratio <= 1.0:
        return precopy_mechanics(vm)
    factor = 1.0 / params.ratio
    base = precopy_mechanics(vm)
    return base._replace(
        first_wire_factor=factor * base.first_wire_factor,
        later_wire_factor=factor,
        first_rate_cap_bps=params.throughput_bps,
        later_rate_cap_bps=params.throughput_bps,
    )
