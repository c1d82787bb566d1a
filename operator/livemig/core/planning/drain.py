"""Draining nodes: maintenance (finish early, least downtime) and evacuation (soonest first, healthy targets only).

Both empty a set of nodes.  Placement: VMIs biggest first, each to the feasible target (in scope, schedulable,
healthy, not being drained) that gives the move the most bandwidth, the least loaded among those, and a target
filled above 85 % only as a last resort; least loaded first also spreads the inbound traffic.  Every migration
reserves its bandwidth (the slower link, capped by bandwidthPerMigration) on both links, so a node runs several
migrations at once only when its link has room for them.

- Maintenance orders each node's VMIs longest predicted first and, whenever a slot frees, serves the node with the
  most predicted work still queued: the node that would finish last starts first.  (Plain longest-first over the
  whole cluster is the baseline it beats: it lets one node's long VMIs hold the cluster slots while another node's
  queue waits.)
- Evacuation orders VMIs shortest predicted first, so as many VMIs as possible are off the unhealthy node as soon as
  possible.

Each move's reason names why its node is drained (named, label, cordoned, unhealthy), the target's ranking values
(the move's bandwidth, the target's fill after the move) and the move's place in the order with the predicted time
that put it there.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from livemig.core.cluster import ClusterSnapshot, Vmi
from livemig.core.planning.assemble import Decision, assemble, cost_for
from livemig.core.planning.costs import CostModel
from livemig.core.planning.explain import ordinal, pct, rate, secs
from livemig.core.planning.framework import Plan, Skipped
from livemig.core.planning.limits import Job, Limits, SlotTracker, schedule
from livemig.core.planning.placement import ClusterState, node_in_scope, unmovable_reason, vmi_in_scope
from livemig.core.planning.spec import PlanningSpec

_PREFERRED_FILL = 0.85  # a drain target filled above this (CPU or memory) is a last resort


def maintenance_nodes(snapshot: ClusterSnapshot, spec: PlanningSpec) -> list[str]:
    """Nodes to drain: named, matching `nodeLabelSelector`, or cordoned (if asked); only within spec.nodeSelector
    (nodes outside it are neither sources nor targets)."""
    m = spec.maintenance
    named = set(m.node_names)
    return [
        node.name
        for node in snapshot.nodes
        if node_in_scope(spec, node)
        and (
            node.name in named
            or (m.node_selector is not None and m.node_selector.matches(node.labels))
            or (m.cordoned and not node.schedulable)
        )
    ]


def maintenance_trigger(snapshot: ClusterSnapshot, spec: PlanningSpec, name: str) -> str:
    """Why maintenance drains node `name`: the triggers of `spec.maintenance` it meets."""
    m, node = spec.maintenance, snapshot.node(name)
    why = []
    if name in m.node_names:
        why.append("named in nodeNames")
    if m.node_selector is not None and m.node_selector.matches(node.labels):
        why.append("matches nodeLabelSelector")
    if m.cordoned and not node.schedulable:
        why.append("cordoned")
    return " and ".join(why)


def evacuation_nodes(snapshot: ClusterSnapshot, spec: PlanningSpec) -> list[str]:
    """Nodes marked unhealthy (or named) within spec.nodeSelector."""
    named = set(spec.evacuation.node_names)
    return [n.name for n in snapshot.nodes if node_in_scope(spec, n) and (n.name in named or not n.healthy)]


def _named_outside(snapshot: ClusterSnapshot, spec: PlanningSpec, names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if snapshot.has_node(n) and not node_in_scope(spec, snapshot.node(n)))


def plan_maintenance(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    window = spec.maintenance.window
    if window is not None and not window[0] <= snapshot.time_s < window[1]:
        return plan_drain(snapshot, spec, model, [], soonest_first=False, why="outside the maintenance window")
    nodes = maintenance_nodes(snapshot, spec)
    return plan_drain(
        snapshot,
        spec,
        model,
        nodes,
        triggers={n: maintenance_trigger(snapshot, spec, n) for n in nodes},
        soonest_first=False,
        max_nodes_in_parallel=spec.maintenance.max_nodes_in_parallel,
        outside=_named_outside(snapshot, spec, spec.maintenance.node_names),
        named=spec.maintenance.node_names,
    )


def plan_evacuation(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    nodes = evacuation_nodes(snapshot, spec)
    named = set(spec.evacuation.node_names)
    return plan_drain(
        snapshot,
        spec,
        model,
        nodes,
        triggers={n: "named" if n in named else "unhealthy" for n in nodes},
        soonest_first=True,
        outside=_named_outside(snapshot, spec, spec.evacuation.node_names),
        named=spec.evacuation.node_names,
    )


def plan_drain(
    snapshot: ClusterSnapshot,
    spec: PlanningSpec,
    model: CostModel,
    nodes: Iterable[str],
    *,
    soonest_first: bool,
    triggers: Mapping[str, str] | None = None,
    max_nodes_in_parallel: int | None = None,
    why: str = "",
    outside: Sequence[str] = (),
    named: Sequence[str] = (),
) -> Plan:
    limits = Limits.effective(spec.limits, spec.technique, snapshot.kubevirt)
    nodes = list(nodes)
    drained = [n for n in nodes if snapshot.has_node(n)]
    missing = sorted({*nodes, *named} - {n.name for n in snapshot.nodes})
    drained_set = set(drained)
    scope_nodes = [n.name for n in snapshot.nodes if node_in_scope(spec, n) or n.name in drained_set]
    targets = [
        n for n in scope_nodes if n not in drained_set and snapshot.node(n).schedulable and snapshot.node(n).healthy
    ]
    before = ClusterState(snapshot, targets)
    state = ClusterState(snapshot, targets)
    skipped: list[Skipped] = []
    out_of_scope = 0
    moving: list[Vmi] = []
    for node in drained:
        for vmi in sorted(state.vmis_on[node].values(), key=lambda v: v.key):
            if not vmi_in_scope(snapshot, spec, vmi):
                out_of_scope += 1
                continue
            blocked = unmovable_reason(vmi) or limits.blocked_reason(vmi, snapshot.time_s)
            if blocked is not None:
                skipped.append(Skipped(vmi.key, node, blocked))
            else:
                moving.append(vmi)

    # Placement, biggest first: onto the feasible target that gives the move the most bandwidth (a 40 Gbit/s
    # node's VMIs sent to a 10 Gbit/s node take 4x as long, and its drain with them), the least loaded among
    # those; targets the VMI would fill above _PREFERRED_FILL only when no other fits.
    moving.sort(key=lambda v: (-max(v.memory_used_bytes, 1.0), -v.cpu_cores, v.key))
    decisions: list[Decision] = []
    ranking = _TargetRanking(state)
    for vmi in moving:
        source = vmi.node
        src_bw = limits.move_bandwidth_bps(state.nodes[source], state.nodes[source])
        target = ranking.best(vmi, src_bw)
        if target is None:
            skipped.append(Skipped(vmi.key, source, "no feasible target (capacity, selectors, taints, anti-affinity)"))
            continue
        bw, cost = cost_for(model, limits, state, vmi, target)
        if not cost.succeeded:
            skipped.append(Skipped(vmi.key, source, f"migration predicted to fail ({cost.outcome})"))
            continue
        receiver = state.nodes[target]
        cpu_after = (state.cpu_used[target] + vmi.cpu_cores) / receiver.cpu_cores
        mem_after = (state.mem_used[target] + vmi.memory_used_bytes) / receiver.memory_bytes
        state.move(vmi, target)
        ranking.update(target)
        why = f"{'evacuate' if soonest_first else 'drain'} {source} ({(triggers or {}).get(source) or 'selected'})"
        where = (
            f"to {target}: {rate(bw)} for the move, {pct(max(cpu_after, mem_after))} full after it "
            f"(cpu {pct(cpu_after)}, memory {pct(mem_after)})"
        )
        if max(cpu_after, mem_after) > _PREFERRED_FILL:
            where += f", every target would be above {pct(_PREFERRED_FILL)}"
        decisions.append(Decision(vmi, source, target, bw, cost, f"{why}; {where}"))

    # Order and schedule.
    if soonest_first:
        decisions.sort(key=lambda d: (d.cost.total_time_s, d.vmi.key))
    else:
        decisions.sort(key=lambda d: (-d.cost.total_time_s, d.vmi.key))
    decisions = _with_order(decisions, soonest_first)
    jobs = [Job(d.source, d.target, d.bandwidth_bps, d.cost.total_time_s) for d in decisions]
    intervals = schedule(
        jobs, SlotTracker(limits, snapshot), most_work_first=not soonest_first, max_sources=max_nodes_in_parallel
    )

    left = len(skipped)
    work = {n: sum(d.cost.total_time_s for d in decisions if d.source == n) for n in drained}
    listed = ", ".join(
        f"{n} ({(triggers or {}).get(n) or 'selected'}, {secs(work[n])} of migration)"
        for n in sorted(drained, key=lambda n: (-work[n], n))
    )
    reason = f"{'evacuate' if soonest_first else 'drain'} {len(drained)} node(s), {listed}: {len(decisions)} moves"
    if not soonest_first and len(drained) > 1:
        reason += ", the node with the most predicted migration first"
    if left:
        reason += f", {left} VMI(s) cannot move"
    if out_of_scope:
        reason += f", {out_of_scope} VMI(s) out of the policy's scope left to KubeVirt"
    if missing:
        reason += f"; unknown nodes: {', '.join(missing)}"
    if outside:
        reason += f"; outside spec.nodeSelector, not drained: {', '.join(outside)}"
    if not drained:
        reason = why or "no node to " + ("evacuate" if soonest_first else "drain")
        if outside:
            reason += f"; outside spec.nodeSelector, not drained: {', '.join(outside)}"
        if missing:
            reason += f"; unknown nodes: {', '.join(missing)}"
    return assemble(
        snapshot, spec, limits, decisions, skipped, scope_nodes, before, state,
        reason=reason, intervals=intervals,
    )  # fmt: skip


def _with_order(decisions: list[Decision], soonest_first: bool) -> list[Decision]:
    """Each decision's reason with its place in the order: evacuation's shortest first over all moves, maintenance's
    longest first within its node."""
    out = []
    per_node: dict[str, int] = {}
    count = {d.source: 0 for d in decisions}
    for d in decisions:
        count[d.source] += 1
    for i, d in enumerate(decisions, 1):
        predicted = secs(d.cost.total_time_s)
        if soonest_first:
            order = f"{ordinal(i)} of {len(decisions)}, shortest first ({predicted} predicted)"
        else:
            k = per_node[d.source] = per_node.get(d.source, 0) + 1
            order = f"{ordinal(k)} of {count[d.source]} off {d.source}, longest first ({predicted} predicted)"
        out.append(replace(d, reason=f"{d.reason}; {order}"))
    return out


class _TargetRanking:
    """Drain targets grouped by link speed, each group sorted by fill now (the larger of CPU and memory use), so
    finding the best target does not rank every node for every VMI.

    A target's key for a VMI is (fill after > _PREFERRED_FILL, −bandwidth of the move, fill after, name); the
    bandwidth is min(source's, target's link, cap) (`src_bw` = the source side, cap included).  Fill after ≥ fill
    now, so a group is scanned in order of fill now only while that lower bound can still beat the best key.
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.groups: dict[float, list[tuple[float, str]]] = {}
        self.fill: dict[str, float] = {}
        for t in sorted(state.targets):
            self.fill[t] = self._fill(t)
            self.groups.setdefault(state.nodes[t].link_bandwidth_bps, []).append((self.fill[t], t))
        for group in self.groups.values():
            group.sort()

    def _fill(self, t: str, cpu: float = 0.0, mem: float = 0.0) -> float:
        node = self.state.nodes[t]
        return max((self.state.cpu_used[t] + cpu) / node.cpu_cores, (self.state.mem_used[t] + mem) / node.memory_bytes)

    def update(self, t: str) -> None:
        group = self.groups[self.state.nodes[t].link_bandwidth_bps]
        del group[bisect.bisect_left(group, (self.fill[t], t))]
        self.fill[t] = self._fill(t)
        bisect.insort(group, (self.fill[t], t))

    def best(self, vmi: Vmi, src_bw: float) -> str | None:
        """The feasible target with the smallest key, or None."""
        best: tuple[bool, float, float, str] | None = None
        for link, group in self.groups.items():
            bw = -min(src_bw, link)
            for now, t in group:
                if best is not None and (now > _PREFERRED_FILL, bw, now) > best[:3]:
                    break
                after = self._fill(t, vmi.cpu_cores, vmi.memory_used_bytes)
                key = (after > _PREFERRED_FILL, bw, after, t)
                if best is None or key < best:
                    best = key
        if best is None:
            return None
        if self.state.blocking_reason(vmi, best[3]) is None:
            return best[3]
        # The best is not allowed (selectors, taints, anti-affinity, capacity): rank them all.
        keyed = sorted(
            (
                (after > _PREFERRED_FILL, -min(src_bw, link), after, t)
                for link, group in self.groups.items()
                for _, t in group
                for after in (self._fill(t, vmi.cpu_cores, vmi.memory_used_bytes),)
            )
        )
        return next((k[3] for k in keyed if self.state.blocking_reason(vmi, k[3]) is None), None)
