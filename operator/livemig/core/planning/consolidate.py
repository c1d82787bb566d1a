"""Consolidation: empty whole nodes, least loaded first, down to the fewest nodes that keep the headroom, moving
the fewest bytes.

1. Nodes that can be released: schedulable, healthy, in scope, under `lowUtilisation` (if set), and holding only
   VMIs livemig may move now (in scope, live-migratable, out of cooldown, within budget, predicted to succeed).
   Every other node is kept.
2. For a node count m from the lower bound upwards, choose which m nodes to keep: the pinned ones plus the
   releasable ones that hold the most bytes (what releasing them would cost), or the largest ones; then pack the
   VMIs of the released nodes into the kept nodes, biggest first, best fit, each kept node staying under
   (1 − headroom) of its CPU and memory, every placement constraint honoured.  The first m that packs wins; among
   its candidate keep-sets, the one moving the fewest bytes.
3. Moves are ordered node by node, the least loaded node first, so nodes empty one after another.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from livemig.core.cluster import ClusterSnapshot, Vmi
from livemig.core.planning.assemble import Decision, assemble, cost_for
from livemig.core.planning.costs import CostModel
from livemig.core.planning.framework import NodeAction, Plan, Skipped
from livemig.core.planning.limits import Limits
from livemig.core.planning.placement import ClusterState, node_in_scope, unmovable_reason, vmi_in_scope
from livemig.core.planning.spec import PlanningSpec

_EXTRA_NODES_TRIED = 6  # node counts tried above the lower bound before giving up on fewer nodes


@dataclass(frozen=True, slots=True)
class _Packing:
    kept: tuple[str, ...]
    released: tuple[str, ...]
    placements: tuple[tuple[Vmi, str], ...]
    bytes_moved: int


def plan_consolidation(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    limits = Limits.effective(spec.limits, spec.technique, snapshot.kubevirt)
    cfg = spec.consolidation
    cap = (1.0 - cfg.headroom_cpu, 1.0 - cfg.headroom_memory)
    scope_nodes = [n.name for n in snapshot.nodes if node_in_scope(spec, n)]
    active = [n for n in scope_nodes if snapshot.node(n).schedulable and snapshot.node(n).healthy]
    before = ClusterState(snapshot, active)
    skipped: list[Skipped] = []

    releasable: list[str] = []
    pinned: list[str] = []
    for name in active:
        why = _pin_reason(snapshot, spec, limits, model, before, name, skipped)
        (pinned if why else releasable).append(name)

    # Kept nodes need room for everything on the active nodes.
    total_cpu = sum(before.cpu_used[n] for n in active)
    total_mem = sum(before.mem_used[n] for n in active)
    lower = max(len(pinned), _lower_bound(snapshot, active, total_cpu, total_mem, cap))
    best: _Packing | None = None
    upper = min(len(active), lower + _EXTRA_NODES_TRIED)
    if cfg.max_nodes is not None:
        # Release at most max_nodes per plan: keep at least all but that many of the active nodes.
        lower = max(lower, len(active) - cfg.max_nodes)
        upper = max(upper, lower)
    for m in range(lower, upper + 1):
        attempts = []
        for rank in (_by_resident_bytes, _by_capacity):
            kept = _choose_kept(snapshot, before, pinned, releasable, m, rank)
            if kept is None:
                continue
            packing = _pack(before, kept, [n for n in releasable if n not in kept], cap)
            if packing is not None:
                attempts.append(packing)
        if attempts:
            best = min(attempts, key=lambda p: (p.bytes_moved, p.released))
            break

    state = ClusterState(snapshot, active)
    decisions: list[Decision] = []
    released: list[str] = []
    if best is not None and best.released:
        # Empty the least loaded nodes first.
        released = sorted(best.released, key=lambda n: (_resident_bytes(before, n), n))
        target_of = {v.key: t for v, t in best.placements}
        for node in released:
            for vmi in sorted(before.vmis_on[node].values(), key=lambda v: (-v.memory_bytes, v.key)):
                target = target_of[vmi.key]
                bw, cost = cost_for(model, limits, state, vmi, target)
                state.move(vmi, target)
                decisions.append(Decision(vmi, node, target, bw, cost, f"empty {node} onto {target} (consolidation)"))
    actions = [
        NodeAction(n, cordon=cfg.cordon_released, labels=tuple(sorted(cfg.label_released.items())))
        for n in released
        if cfg.cordon_released or cfg.label_released
    ]
    used_before = sum(1 for n in active if before.vmis_on[n])
    reason = (
        f"release {len(released)} of {len(active)} nodes ({used_before} in use, lower bound {lower}) "
        f"keeping {100 * cfg.headroom_cpu:.0f}% CPU and {100 * cfg.headroom_memory:.0f}% memory headroom"
        if released
        else "no node can be released while keeping the headroom"
    )
    return assemble(
        snapshot, spec, limits, decisions, skipped, scope_nodes, before, state,
        reason=reason, released=released, node_actions=actions,
    )  # fmt: skip


def _pin_reason(
    snapshot: ClusterSnapshot,
    spec: PlanningSpec,
    limits: Limits,
    model: CostModel,
    state: ClusterState,
    name: str,
    skipped: list[Skipped],
) -> str | None:
    node = state.nodes[name]
    cfg = spec.consolidation
    if (cfg.low_cpu is not None and state.cpu_util(name) >= cfg.low_cpu) or (
        cfg.low_memory is not None and state.mem_util(name) >= cfg.low_memory
    ):
        return "above the low-utilisation threshold"
    reason: str | None = None
    for vmi in state.vmis_on[name].values():
        why: str | None
        if not vmi_in_scope(snapshot, spec, vmi):
            why = "out of scope"
        else:
            why = unmovable_reason(vmi) or limits.blocked_reason(vmi, snapshot.time_s)
            if why is None:
                bw = limits.move_bandwidth_bps(node, node)
                cost = model.cost(vmi, bw)
                if not cost.succeeded:
                    why = f"migration predicted to fail ({cost.outcome})"
            if why is not None:
                skipped.append(Skipped(vmi.key, name, why))
        if why is not None:
            reason = why
    return reason


def _lower_bound(
    snapshot: ClusterSnapshot, nodes: Sequence[str], cpu: float, mem: float, cap: tuple[float, float]
) -> int:
    """Fewest nodes, largest first, whose capped capacity covers the demand (per resource; the larger count)."""
    if not nodes:
        return 0
    counts = []
    cpu_sizes = [snapshot.node(n).cpu_cores for n in nodes]
    mem_sizes = [snapshot.node(n).memory_bytes for n in nodes]
    for demand, sizes, c in ((cpu, cpu_sizes, cap[0]), (mem, mem_sizes, cap[1])):
        room = 0.0
        k = 0
        for size in sorted(sizes, reverse=True):
            if room >= demand - 1e-9:
                break
            room += size * c
            k += 1
        counts.append(k if room >= demand - 1e-9 else len(nodes))
    return max(1 if cpu > 0 or mem > 0 else 0, *counts)


def _resident_bytes(state: ClusterState, node: str) -> float:
    return sum(v.memory_bytes for v in state.vmis_on[node].values())


def _by_resident_bytes(snapshot: ClusterSnapshot, state: ClusterState, node: str) -> tuple[float, ...]:
    return (-_resident_bytes(state, node), node)  # type: ignore[return-value]


def _by_capacity(snapshot: ClusterSnapshot, state: ClusterState, node: str) -> tuple[float, ...]:
    n = snapshot.node(node)
    return (-(n.cpu_cores / 1000 + n.memory_bytes / 2**40), -_resident_bytes(state, node), node)  # type: ignore[return-value]


def _choose_kept(
    snapshot: ClusterSnapshot,
    state: ClusterState,
    pinned: Sequence[str],
    releasable: Sequence[str],
    m: int,
    rank: object,
) -> list[str] | None:
    extra = m - len(pinned)
    if extra < 0:
        return None
    ordered = sorted(releasable, key=lambda n: rank(snapshot, state, n))  # type: ignore[operator]
    return [*pinned, *ordered[:extra]]


def _pack(
    state: ClusterState, kept: Sequence[str], released: Sequence[str], cap: tuple[float, float]
) -> _Packing | None:
    """Best-fit decreasing of the released nodes' VMIs into the kept nodes (CPU room as the sort key)."""
    moving = [v for n in released for v in state.vmis_on[n].values()]
    if not moving:
        return _Packing(tuple(kept), (), (), 0)
    nodes = state.nodes
    cpu_room = {n: nodes[n].cpu_cores * cap[0] - state.cpu_used[n] for n in kept}
    mem_room = {n: nodes[n].memory_bytes * cap[1] - state.mem_used[n] for n in kept}
    # Normalised size: the larger of the CPU and memory shares of an average kept node.
    avg_cpu = sum(nodes[n].cpu_cores for n in kept) / len(kept)
    avg_mem = sum(nodes[n].memory_bytes for n in kept) / len(kept)
    moving.sort(key=lambda v: (-max(v.cpu_cores / avg_cpu, v.memory_used_bytes / avg_mem), v.key))
    keys = sorted((cpu_room[n], n) for n in kept)
    placements: list[tuple[Vmi, str]] = []
    kept_set = set(kept)
    saved_targets = state.targets
    state.targets = kept_set
    try:
        for vmi in moving:
            i = bisect.bisect_left(keys, (vmi.cpu_cores - 1e-9, ""))
            chosen: str | None = None
            while i < len(keys):
                _, n = keys[i]
                if mem_room[n] >= vmi.memory_used_bytes - 1e-6 and _placeable(state, vmi, n):
                    chosen = n
                    break
                i += 1
            if chosen is None:
                return None
            del keys[i]
            cpu_room[chosen] -= vmi.cpu_cores
            mem_room[chosen] -= vmi.memory_used_bytes
            bisect.insort(keys, (cpu_room[chosen], chosen))
            state.move(vmi, chosen)
            placements.append((vmi, chosen))
    finally:
        for vmi, _ in reversed(placements):
            state.move(vmi, vmi.node)
        state.targets = saved_targets
    return _Packing(tuple(kept), tuple(released), tuple(placements), int(sum(v.memory_bytes for v, _ in placements)))


def _placeable(state: ClusterState, vmi: Vmi, target: str) -> bool:
    node = state.nodes[target]
    return state.static_reason(vmi, node) is None and state.anti_affinity_reason(vmi, node) is None


def released_fraction(plan: Plan) -> float:
    used = plan.efficacy.nodes_used_before
    return len(plan.efficacy.nodes_released) / used if used else math.nan
