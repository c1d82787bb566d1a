"""The one place where limits are enforced: concurrency (cluster, per node, link bandwidth), cooldown, budgets.

Every planner asks `Limits.blocked_reason` before it moves a VMI and builds its schedule on `SlotTracker`, so a
plan never runs more migrations at once than KubeVirt and the policy allow, never oversubscribes a node's
migration link, and never moves a VMI inside its cooldown or beyond its budget.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livemig.core.cluster import ClusterSnapshot, KubevirtMigrationConfig, Node, Vmi
from livemig.core.planning.spec import LimitsSpec, TechniqueSpec

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Limits:
    """Effective limits: the stricter of the policy's and KubeVirt's."""

    max_cluster: int  # migrations at once in the cluster
    max_per_node: int  # outbound migrations at once per node (KubeVirt's limit is outbound)
    cooldown_s: float
    max_per_vmi: int | None  # migrations per VMI per window, this plan's included
    window_s: float
    bandwidth_cap_bps: float  # per migration; 0 = none

    @classmethod
    def effective(cls, limits: LimitsSpec, technique: TechniqueSpec, kubevirt: KubevirtMigrationConfig) -> Limits:
        cluster = kubevirt.parallel_migrations_per_cluster
        if limits.max_concurrent_migrations is not None:
            cluster = min(cluster, limits.max_concurrent_migrations)
        node = kubevirt.parallel_outbound_migrations_per_node
        if limits.max_concurrent_migrations_per_node is not None:
            node = min(node, limits.max_concurrent_migrations_per_node)
        cap = kubevirt.bandwidth_per_migration_bps
        if technique.bandwidth_per_migration_bps:
            cap = technique.bandwidth_per_migration_bps
        return cls(
            max_cluster=max(1, cluster),
            max_per_node=max(1, node),
            cooldown_s=limits.cooldown_s,
            max_per_vmi=limits.max_migrations_per_vmi,
            window_s=limits.window_s,
            bandwidth_cap_bps=cap,
        )

    def blocked_reason(self, vmi: Vmi, now_s: float) -> str | None:
        """Why this VMI may not be moved now (cooldown or budget), or None."""
        if vmi.migrations_s and self.cooldown_s > 0:
            since = now_s - vmi.migrations_s[-1]
            if since < self.cooldown_s:
                return f"in cooldown: migrated {since:.0f}s ago, cooldown {self.cooldown_s:.0f}s"
        if self.max_per_vmi is not None:
            recent = sum(1 for t in vmi.migrations_s if now_s - t < self.window_s)
            if recent + 1 > self.max_per_vmi:
                return f"budget spent: {recent} migrations in the last {self.window_s:.0f}s (max {self.max_per_vmi})"
        return None

    def move_bandwidth_bps(self, source: Node, target: Node) -> float:
        """The bandwidth one migration gets: the slower link, capped by bandwidthPerMigration when set."""
        bw = min(source.link_bandwidth_bps, target.link_bandwidth_bps)
        if self.bandwidth_cap_bps > 0:
            bw = min(bw, self.bandwidth_cap_bps)
        return bw

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "maxConcurrentMigrations": self.max_cluster,
            "maxConcurrentMigrationsPerNode": self.max_per_node,
            "cooldownSeconds": self.cooldown_s,
            "maxMigrationsPerVMI": self.max_per_vmi,
            "windowSeconds": self.window_s,
            "bandwidthPerMigrationBps": self.bandwidth_cap_bps,
        }


class SlotTracker:
    """Running migrations at one instant: counts per cluster and per source node, link use per node (out and in).

    A migration reserves its bandwidth on the source's and the target's link for its whole duration; the sum of
    reservations never exceeds a link (so the bandwidth each prediction assumed is really available).
    """

    def __init__(self, limits: Limits, snapshot: ClusterSnapshot) -> None:
        self.limits = limits
        self.links = {n.name: n.link_bandwidth_bps for n in snapshot.nodes}
        self.running = 0
        self.outbound: dict[str, int] = defaultdict(int)
        self.link_out: dict[str, float] = defaultdict(float)
        self.link_in: dict[str, float] = defaultdict(float)

    def source_free(self, source: str) -> bool:
        return self.running < self.limits.max_cluster and self.outbound[source] < self.limits.max_per_node

    def can_start(self, source: str, target: str, bandwidth_bps: float) -> bool:
        return (
            self.source_free(source)
            and self.link_out[source] + bandwidth_bps <= self.links[source] * (1 + _EPS)
            and self.link_in[target] + bandwidth_bps <= self.links[target] * (1 + _EPS)
        )

    def start(self, source: str, target: str, bandwidth_bps: float) -> None:
        if not self.can_start(source, target, bandwidth_bps):
            raise ValueError(f"limit exceeded starting {source} -> {target}")
        self.running += 1
        self.outbound[source] += 1
        self.link_out[source] += bandwidth_bps
        self.link_in[target] += bandwidth_bps

    def finish(self, source: str, target: str, bandwidth_bps: float) -> None:
        self.running -= 1
        self.outbound[source] -= 1
        self.link_out[source] = max(0.0, self.link_out[source] - bandwidth_bps)
        self.link_in[target] = max(0.0, self.link_in[target] - bandwidth_bps)


@dataclass(frozen=True, slots=True)
class Job:
    """A move to schedule: its source, target, bandwidth and predicted duration."""

    source: str
    target: str
    bandwidth_bps: float
    duration_s: float


def schedule(
    jobs: Sequence[Job],
    tracker: SlotTracker,
    *,
    most_work_first: bool = False,
    max_sources: int | None = None,
) -> list[tuple[float, float]]:
    """List scheduling: at every instant start each job whose source, target and the cluster have room.

    Jobs are queued per source in the order given; a source's jobs start in that order (looking past a few whose
    target link is busy), so a blocked source never holds back another one.  Sources are served in the order of
    their next job (the plan's priority), or with `most_work_first` the source with the most predicted work still
    queued first (so the node that would finish last starts first).  `max_sources` caps how many sources are being
    emptied at once (a source counts from its first start until its last job finished).  Returns (start_s, finish_s)
    per job.
    """
    starts: list[tuple[float, float]] = [(math.nan, math.nan)] * len(jobs)
    queues: dict[str, list[int]] = defaultdict(list)
    for i, job in enumerate(jobs):
        queues[job.source].append(i)
    for q in queues.values():
        q.reverse()  # pop() from the end = highest priority first
    finishing: list[tuple[float, int]] = []
    now = 0.0
    pending = len(jobs)
    work: dict[str, float] = defaultdict(float)
    for job in jobs:
        work[job.source] += job.duration_s

    active: set[str] = set()

    def started(i: int) -> None:
        work[jobs[i].source] -= jobs[i].duration_s
        active.add(jobs[i].source)

    def allowed(src: str) -> bool:
        return max_sources is None or src in active or len(active) < max_sources

    def finished(i: int) -> None:
        job = jobs[i]
        tracker.finish(job.source, job.target, job.bandwidth_bps)
        if not queues[job.source] and tracker.outbound[job.source] == 0:
            active.discard(job.source)

    def key(src: str, queue: list[int]) -> tuple[float, int]:
        return (-work[src], queue[-1]) if most_work_first else (float(queue[-1]), 0)

    while pending:
        _start_ready(jobs, queues, tracker, now, starts, finishing, started, key, allowed)
        if not finishing:
            raise RuntimeError("schedule stalled: a job needs more than a whole link or slot")  # pragma: no cover
        now, done = heapq.heappop(finishing)
        finished(done)
        pending -= 1
        while finishing and finishing[0][0] <= now:
            _, other = heapq.heappop(finishing)
            finished(other)
            pending -= 1
    return starts


def _start_ready(
    jobs: Sequence[Job],
    queues: dict[str, list[int]],
    tracker: SlotTracker,
    now: float,
    starts: list[tuple[float, float]],
    finishing: list[tuple[float, int]],
    on_start: Callable[[int], None],
    key: Callable[[str, list[int]], tuple[float, int]],
    allowed: Callable[[str], bool],
) -> None:
    order = sorted((key(src, q), src) for src, q in queues.items() if q)
    for _, src in order:
        if tracker.running >= tracker.limits.max_cluster:
            return
        if not allowed(src):
            continue
        queue = queues[src]
        looked = 0
        k = len(queue) - 1
        while k >= 0 and looked < 8 and tracker.source_free(src):
            i = queue[k]
            job = jobs[i]
            if tracker.can_start(job.source, job.target, job.bandwidth_bps):
                tracker.start(job.source, job.target, job.bandwidth_bps)
                starts[i] = (now, now + job.duration_s)
                heapq.heappush(finishing, (now + job.duration_s, i))
                on_start(i)
                del queue[k]
            else:
                looked += 1  # look past at most a few blocked jobs of this source
            k -= 1


def waves(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Group scheduled moves into waves: wave n+1 holds the moves that start after every move of wave n started.

    A move starts in the wave of the latest finish it waits for plus one; moves starting at 0 are wave 0.
    """
    finishes = sorted(f for _, f in intervals)
    out: list[int] = []
    for start, _ in intervals:
        # number of distinct "finish barriers" before this start
        out.append(_count_le(finishes, start))
    # compress to consecutive wave numbers
    mapping = {w: i for i, w in enumerate(sorted(set(out)))}
    return [mapping[w] for w in out]


def _count_le(sorted_values: Sequence[float], x: float) -> int:
    lo, hi = 0, len(sorted_values)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_values[mid] <= x + 1e-9:
            lo = mid + 1
        else:
            hi = mid
    return lo
