"""The one place where limits are enforced: concurrency (cluster, per node, link bandwidth), cooldown, budgets.

Every planner asks `Limits.blocked_reason` before it moves a VMI and builds its schedule on `SlotTracker`, so a
plan never runs more migrations at once than KubeVirt and the policy allow, never oversubscribes a node's
migration link, and never moves a VMI inside its cooldown or beyond its budget.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence
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
        # The policy's bandwidthPerMigration replaces the cluster's when set, 0 (unlimited) included, as KubeVirt
        # applies a MigrationPolicy's value over its cluster configuration.
        cap = float(kubevirt.bandwidth_per_migration_bps)
        if technique.bandwidth_per_migration_bps is not None:
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
    work: dict[str, float] = defaultdict(float)
    for job in jobs:
        work[job.source] += job.duration_s
    active: set[str] = set()

    def key(src: str) -> tuple[float, int]:
        head = queues[src][-1]
        return (-work[src], head) if most_work_first else (float(head), 0)

    # Sources with queued jobs, in serving order.  A source's key changes only when one of its jobs starts, so the
    # heap is updated then (stale entries are skipped by version).
    version: dict[str, int] = defaultdict(int)
    heap: list[tuple[tuple[float, int], str, int]] = []

    def push(src: str) -> None:
        if queues[src]:
            version[src] += 1
            heapq.heappush(heap, (key(src), src, version[src]))

    for src in queues:
        push(src)
    finishing: list[tuple[float, int]] = []
    now = 0.0
    pending = len(jobs)
    while pending:
        examined: list[str] = []
        while heap and tracker.running < tracker.limits.max_cluster:
            _, src, ver = heapq.heappop(heap)
            if ver != version[src]:
                continue
            examined.append(src)
            if max_sources is not None and src not in active and len(active) >= max_sources:
                continue
            for i in _start_from(jobs, queues[src], tracker):
                starts[i] = (now, now + jobs[i].duration_s)
                heapq.heappush(finishing, (now + jobs[i].duration_s, i))
                work[src] -= jobs[i].duration_s
                active.add(src)
        for src in examined:
            push(src)
        if not finishing:
            raise RuntimeError("schedule stalled: a job needs more than a whole link or slot")  # pragma: no cover
        now = finishing[0][0]
        while finishing and finishing[0][0] <= now:
            _, done = heapq.heappop(finishing)
            job = jobs[done]
            tracker.finish(job.source, job.target, job.bandwidth_bps)
            if not queues[job.source] and tracker.outbound[job.source] == 0:
                active.discard(job.source)
            pending -= 1
    return starts


def _start_from(jobs: Sequence[Job], queue: list[int], tracker: SlotTracker) -> list[int]:
    """Start what this source can now, in its order, looking past at most a few jobs whose target is busy."""
    started: list[int] = []
    looked = 0
    k = len(queue) - 1
    while k >= 0 and looked < 8 and tracker.running < tracker.limits.max_cluster:
        i = queue[k]
        job = jobs[i]
        if not tracker.source_free(job.source):
            break
        if tracker.can_start(job.source, job.target, job.bandwidth_bps):
            tracker.start(job.source, job.target, job.bandwidth_bps)
            started.append(i)
            del queue[k]
        else:
            looked += 1
        k -= 1
    return started


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
