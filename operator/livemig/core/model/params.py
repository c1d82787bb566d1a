"""Inputs of the performance model: the VM, the link and the migration settings (all frozen, all SI units).

Bytes are bytes, rates are bytes per second, times are seconds.  `MigrationSettings` carries KubeVirt's migration
configuration (the `qemu` profile) or Xen's constants (the `xen` profile) plus the parameters of every technique,
grouped in small dataclasses with defaults, each default with its source (see docs/model.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from livemig.core.errors import SpecError
from livemig.core.units import PAGE_SIZE

MIB = 2**20


class StopRules(StrEnum):
    """Which stop rules end pre-copy."""

    QEMU = "qemu"  # KubeVirt on QEMU/libvirt: downtime-limit, completion and progress timeouts
    XEN = "xen"  # Clark et al. / libxc: < 50 dirty pages, 30 rounds, 3x memory sent


def _check(path: str, value: float, *, positive: bool = False, at_most: float | None = None) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise SpecError(path, f"must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise SpecError(path, f"must be greater than zero, got {value!r}")
    if value < 0:
        raise SpecError(path, f"must not be negative, got {value!r}")
    if at_most is not None and value > at_most:
        raise SpecError(path, f"must be at most {at_most}, got {value!r}")


@dataclass(frozen=True, slots=True)
class VmParams:
    """The migrating VM.

    `working_set_bytes` (W) is the writable working set: the writes land in it, so at most W bytes are dirty at once
    (§11 of papers.md).  `hot_write_fraction` is the share of the writes that land in W (the rest spreads over the
    other M - W bytes); it only matters when W is given.  `state_bytes` (S) is CPU/device state sent during the
    downtime.  `log_rate_bps` is CR/TR's log generation rate (trace-replay only; default: a fraction of the dirty
    rate, see `TraceReplayParams`).  `zero_bytes` (Z) is memory the guest has never written: QEMU finds those pages
    zero in its first pass and sends a 9-byte marker instead of the page (ram.c `save_zero_page`), so pass 0 costs
    about M - Z on the wire (in a cluster: memory minus the guest's used memory; the lab measures it).
    `cpu_utilization` (u) is the share of its vCPU time the guest's writers use (usage.cpu / vcpus): auto-converge's
    throttle takes that share of vCPU time away, which slows the writes only once 1 - throttle < u, so they run at
    D · min(1, (1 - throttle) / u).  1 = a CPU-bound writer (every throttled cycle is a lost write).
    """

    memory_bytes: float
    dirty_rate_bps: float
    working_set_bytes: float | None = None
    page_size: int = PAGE_SIZE
    hot_write_fraction: float = 1.0
    state_bytes: float = 0.0
    log_rate_bps: float | None = None
    zero_bytes: float = 0.0
    cpu_utilization: float = 1.0

    def __post_init__(self) -> None:
        _check("memory_bytes", self.memory_bytes, positive=True)
        _check("zero_bytes", self.zero_bytes, at_most=self.memory_bytes)
        _check("cpu_utilization", self.cpu_utilization, positive=True, at_most=1.0)
        _check("dirty_rate_bps", self.dirty_rate_bps)
        if self.working_set_bytes is not None:
            _check("working_set_bytes", self.working_set_bytes, at_most=self.memory_bytes)
        _check("page_size", self.page_size, positive=True)
        _check("hot_write_fraction", self.hot_write_fraction, at_most=1.0)
        _check("state_bytes", self.state_bytes)
        if self.log_rate_bps is not None:
            _check("log_rate_bps", self.log_rate_bps)


@dataclass(frozen=True, slots=True)
class LinkParams:
    """The migration link, already capped by KubeVirt's bandwidthPerMigration (bytes/s).

    `switchover_bandwidth_bps` is the link's raw speed, used while the guest is stopped (stop-and-copy and the
    post-copy switch): QEMU lifts `max-bandwidth` there (migration.c `migration_completion_precopy` and
    `postcopy_start` set RATE_LIMIT_DISABLED), so a cap below the wire does not lengthen the downtime.  None: the cap
    is the wire (bandwidth_bps).
    """

    bandwidth_bps: float
    switchover_bandwidth_bps: float | None = None

    def __post_init__(self) -> None:
        _check("bandwidth_bps", self.bandwidth_bps, positive=True)
        if self.switchover_bandwidth_bps is not None:
            _check("switchover_bandwidth_bps", self.switchover_bandwidth_bps, positive=True)


@dataclass(frozen=True, slots=True)
class ThrottleParams:
    """QEMU auto-converge (migration/options.c defaults; ram.c `migration_trigger_throttle`)."""

    initial: float = 0.20  # cpu-throttle-initial
    increment: float = 0.10  # cpu-throttle-increment
    maximum: float = 0.99  # max-cpu-throttle
    trigger_threshold: float = 0.50  # throttle-trigger-threshold: dirtied > 50 % of sent in a period
    periods_per_step: int = 2  # raised on every second such period (dirty_rate_high_cnt >= 2)
    min_period_s: float = 1.0  # a sync period is evaluated only if >= 1 s since the last evaluation

    def __post_init__(self) -> None:
        _check("throttle.initial", self.initial, at_most=0.99)
        _check("throttle.increment", self.increment, at_most=0.99)
        _check("throttle.maximum", self.maximum, at_most=0.99)
        _check("throttle.trigger_threshold", self.trigger_threshold)
        _check("throttle.periods_per_step", self.periods_per_step, positive=True)
        _check("throttle.min_period_s", self.min_period_s)


@dataclass(frozen=True, slots=True)
class XenRateLimiter:
    """Xen's dynamic rate limiting (libxc xc_domain_save.c): start 100 Mbit/s, dirty rate + 50 Mbit/s, cap 500."""

    start_bps: float = 100e6 / 8
    increment_bps: float = 50e6 / 8
    maximum_bps: float = 500e6 / 8


@dataclass(frozen=True, slots=True)
class XenParams:
    """Xen's pre-copy stop rules (libxc: DEF_MAX_ITERS 29 -> 30 rounds, DEF_MAX_FACTOR 3, < 50 pages)."""

    max_rounds: int = 30
    max_factor: float = 3.0
    min_dirty_pages: int = 50
    rate_limiter: XenRateLimiter | None = None  # None: fixed link rate (papers.md V1-V5, V7-V12)


@dataclass(frozen=True, slots=True)
class XbzrleParams:
    """QEMU XBZRLE delta compression against a page cache (default cache 64 MiB, QEMU's default).

    A re-sent page hits the cache with probability min(1, cache / hot set) (the lab's step function: 64 MiB against a
    128 MiB hot set gave a miss rate of 0.50-0.67); a hit costs page/delta_ratio wire bytes.  The lab's dirtier changes
    8 bytes per page and measured 315:1; delta_ratio 20 is an assumption for workloads that change more of a page.
    """

    cache_bytes: float = 64 * MIB
    delta_ratio: float = 20.0

    def __post_init__(self) -> None:
        _check("xbzrle.cache_bytes", self.cache_bytes)
        _check("xbzrle.delta_ratio", self.delta_ratio, positive=True)


@dataclass(frozen=True, slots=True)
class CompressionParams:
    """MECOM adaptive compression: every page compressed, ratio c, pipeline throughput cap (logical bytes/s).

    Defaults from Jin et al. 2009: c = 1/(1 - 0.688) = 3.2 from the published data cut; the throughput 184 MB/s is
    what the published 32 % time cut implies on their Gigabit link (125 MB/s / (1 - 0.32)); see docs/model.md.
    """

    ratio: float = 1.0 / (1.0 - 0.688)
    throughput_bps: float = 125e6 / (1.0 - 0.32)

    def __post_init__(self) -> None:
        _check("compression.ratio", self.ratio, positive=True)
        _check("compression.throughput_bps", self.throughput_bps, positive=True)


@dataclass(frozen=True, slots=True)
class TraceReplayParams:
    """CR/TR-Motion: checkpoint, then iterative log rounds replayed on the target.

    `log_bytes_per_dirty_byte` gives the log rate when the VM does not state one (an assumption, not from the paper);
    `replay_rate_bps` is how fast the target replays log bytes.  It converges only while log rate < min(link, replay).
    """

    log_bytes_per_dirty_byte: float = 0.05
    replay_rate_bps: float = 1e9

    def __post_init__(self) -> None:
        _check("trace_replay.log_bytes_per_dirty_byte", self.log_bytes_per_dirty_byte)
        _check("trace_replay.replay_rate_bps", self.replay_rate_bps, positive=True)


@dataclass(frozen=True, slots=True)
class PostCopyParams:
    """Post-copy page faults: the share of the post-copy phase the guest vCPUs spend blocked on remote pages.

    0.5 from the lab (QEMU 10, TCG): 1.0-1.4 s of vCPU blocktime in a 2.4 s post-copy phase.
    """

    fault_stall_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check("post_copy.fault_stall_fraction", self.fault_stall_fraction, at_most=1.0)


@dataclass(frozen=True, slots=True)
class MigrationSettings:
    """KubeVirt's migration configuration in force plus the model's parameters (defaults are KubeVirt's/QEMU's).

    `allow_post_copy` / `allow_auto_converge` say whether livemig may use those techniques; what a technique does
    to KubeVirt's configuration when livemig actuates it is `actuation()` in techniques.py.  `allow_workload_disruption`
    None follows `allow_post_copy` (KubeVirt).  `post_copy_timeout_per_gib` is the completionTimeoutPerGiB livemig
    sets to reach post-copy (0: switch at once, as in the papers).  `wall_clock_cap_s` is a caller's cap
    (outcome not-converged).  `round_overhead_s` is a dead time per pass (dirty-bitmap sync), `resume_overhead_s`
    (T_res) is added to every downtime.
    """

    stop_rules: StopRules = StopRules.QEMU
    downtime_limit_s: float = 0.3
    completion_timeout_per_gib: float = 150.0
    progress_timeout_s: float = 150.0
    allow_post_copy: bool = False
    allow_auto_converge: bool = False
    allow_workload_disruption: bool | None = None
    post_copy_timeout_per_gib: float = 1.0
    wall_clock_cap_s: float | None = None
    round_overhead_s: float = 0.0
    resume_overhead_s: float = 0.0
    throttle: ThrottleParams = field(default_factory=ThrottleParams)
    xen: XenParams = field(default_factory=XenParams)
    xbzrle: XbzrleParams = field(default_factory=XbzrleParams)
    compression: CompressionParams = field(default_factory=CompressionParams)
    trace_replay: TraceReplayParams = field(default_factory=TraceReplayParams)
    post_copy: PostCopyParams = field(default_factory=PostCopyParams)
    horizon_s: float = 7 * 86400.0  # a run nothing else ends stops here as not-converged

    def __post_init__(self) -> None:
        _check("downtime_limit_s", self.downtime_limit_s, positive=True)
        _check("completion_timeout_per_gib", self.completion_timeout_per_gib)
        _check("progress_timeout_s", self.progress_timeout_s)
        _check("post_copy_timeout_per_gib", self.post_copy_timeout_per_gib)
        if self.wall_clock_cap_s is not None:
            _check("wall_clock_cap_s", self.wall_clock_cap_s, positive=True)
        _check("round_overhead_s", self.round_overhead_s)
        _check("resume_overhead_s", self.resume_overhead_s)
        _check("horizon_s", self.horizon_s, positive=True)

    @property
    def workload_disruption_allowed(self) -> bool:
        """KubeVirt: allowWorkloadDisruption defaults to allowPostCopy."""
        if self.allow_workload_disruption is None:
            return self.allow_post_copy
        return self.allow_workload_disruption
