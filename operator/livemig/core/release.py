"""Which queued moves may start now: one rule for every policy, under KubeVirt's caps and each policy's limits.

livemig keeps over-cap work in its own queue instead of creating VMIMs that would sit Pending in KubeVirt's (whose
order is arbitrary up to v1.8, docs/operator.md), so the order it chooses is the order that runs.  Pure.

Priority when policies compete: Evacuation > Maintenance > LoadBalancing > Consolidation, then the plan's own order.
Counted against KubeVirt's caps: every unfinished VMIM in the cluster, livemig's or not (KubeVirt's evacuations,
users' migrations), since KubeVirt counts them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.vocabulary import Purpose

PURPOSE_RANK: dict[Purpose, int] = {
    Purpose.EVACUATION: 0,
    Purpose.MAINTENANCE: 1,
    Purpose.LOAD_BALANCING: 2,
    Purpose.CONSOLIDATION: 3,
}


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    max_concurrent: int
    max_concurrent_per_node: int


@dataclass(frozen=True, slots=True)
class Queued:
    """A move waiting in livemig's queue."""

    key: str  # VMI ns/name
    policy: str
    purpose: Purpose
    order: int  # position in its plan
    source: str
    target: str
    plan: str = ""  # the plan's id
    wave: int = 0  # the plan's wave: wave n+1 starts once wave n has finished (the plan's capacity holds per wave)

    @property
    def rank(self) -> tuple[int, int]:
        return PURPOSE_RANK[self.purpose], self.order


@dataclass(frozen=True, slots=True)
class Running:
    """An unfinished migration (any VMIM not Succeeded/Failed), with the livemig policy that made it, if any."""

    key: str
    source: str
    policy: str | None = None
    plan: str = ""  # livemig's: the plan and wave it was started from
    wave: int = 0


@dataclass(frozen=True, slots=True)
class Release:
    start: tuple[Queued, ...]
    waiting: tuple[tuple[Queued, str], ...]  # with the reason it waits


def release(
    queue: Iterable[Queued],
    running: Sequence[Running],
    kubevirt: KubevirtMigrationConfig,
    limits: dict[str, PolicyLimits],
) -> Release:
    """The moves to start now, in priority order, and why the others wait.

    A move waits when the cluster cap is full (then everything after it waits too: the cap is shared, so a
    lower-priority move must not take the slot a higher one is waiting for), when its source node's outbound cap
    or its policy's limits are full (others may still go), when its VMI is already migrating, or when an earlier
    wave of its plan is still queued or running (a plan's targets have room by requests only once the earlier
    waves' VMIs have left them)."""
    cluster = len(running)
    outbound = Counter(r.source for r in running)
    per_policy = Counter(r.policy for r in running if r.policy)
    per_policy_node = Counter((r.policy, r.source) for r in running if r.policy)
    busy = {r.key for r in running}
    queue = list(queue)
    lowest_wave: dict[tuple[str, str], int] = {}
    waves = [(q.policy, q.plan, q.wave) for q in queue] + [(r.policy or "", r.plan, r.wave) for r in running if r.plan]
    for policy, plan, wave in waves:
        lowest_wave[(policy, plan)] = min(lowest_wave.get((policy, plan), wave), wave)
    start: list[Queued] = []
    waiting: list[tuple[Queued, str]] = []
    cap, node_cap = kubevirt.parallel_migrations_per_cluster, kubevirt.parallel_outbound_migrations_per_node
    for move in sorted(queue, key=lambda q: q.rank):
        limit = limits.get(move.policy)
        if move.key in busy:
            waiting.append((move, "the VMI is already migrating"))
            continue
        first = lowest_wave.get((move.policy, move.plan), move.wave)
        if move.plan and first < move.wave:
            waiting.append((move, f"wave {move.wave + 1} of its plan waits for wave {first + 1} to finish"))
            continue
        if cluster >= cap:
            waiting.append(
                (
                    move,
                    f"KubeVirt's parallelMigrationsPerCluster ({kubevirt.parallel_migrations_per_cluster}) is in use",
                )
            )
            continue
        if outbound[move.source] >= node_cap:
            waiting.append(
                (move, f"KubeVirt's parallelOutboundMigrationsPerNode ({node_cap}) is in use on {move.source}")
            )
            continue
        if limit is not None and per_policy[move.policy] >= limit.max_concurrent:
            waiting.append((move, f"the policy's maxConcurrentMigrations ({limit.max_concurrent}) is in use"))
            continue
        if limit is not None and per_policy_node[(move.policy, move.source)] >= limit.max_concurrent_per_node:
            waiting.append(
                (
                    move,
                    f"the policy's maxConcurrentMigrationsPerNode ({limit.max_concurrent_per_node}) on {move.source}",
                )
            )
            continue
        start.append(move)
        busy.add(move.key)
        cluster += 1
        outbound[move.source] += 1
        per_policy[move.policy] += 1
        per_policy_node[(move.policy, move.source)] += 1
    return Release(tuple(start), tuple(waiting))
