"""Load balancing: bring every node above the high threshold under the target, pushing no node over the target.

For each hot node (hottest first) the planner picks VMIs to move by relief per cost: relief is the part of the
node's excess over the target a move removes (CPU, memory, and PSI pressure, scaled with CPU use), cost is the
predicted bytes on the wire (plus a fixed per-move charge) weighted by the predicted downtime.  It also tries the
single cheapest VMI that clears the whole excess and keeps whichever set moves fewer bytes.  Each VMI goes to the
feasible target left least loaded.  A hot node that cannot be brought under the target keeps all its VMIs (partial
relief would only trigger the next cycle).  The end state is checked: planning again on it must find nothing to do,
otherwise the plan is rejected (hysteresis: no oscillation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from livemig.core.cluster import ClusterSnapshot, NodePressure, Vmi
from livemig.core.planning.assemble import Decision, assemble, cost_for
from livemig.core.planning.costs import CostModel
from livemig.core.planning.framework import Plan, PlanStatus, Skipped
from livemig.core.planning.limits import Limits
from livemig.core.planning.placement import ClusterState, node_in_scope, unmovable_reason, vmi_in_scope
from livemig.core.planning.spec import PlanningSpec, Thresholds
from livemig.core.vocabulary import Purpose

_MOVE_CHARGE_BYTES = 256 * 2**20  # a fixed charge per move, so many tiny moves do not beat one adequate move
_DOWNTIME_SCALE_S = 1.0  # cost × (1 + downtime / this)


_DIMS = ("cpu", "memory", "pressure_cpu", "pressure_memory", "pressure_io")


@dataclass
class _Loads:
    """Per-node load vector: CPU and memory utilisation, and PSI pressure rescaled with use (a heuristic: CPU and
    IO pressure scale with the node's CPU use, memory pressure with its memory use, as VMIs leave or arrive)."""

    psi: dict[str, tuple[float, float, float]]
    cpu_base: dict[str, float]
    mem_base: dict[str, float]

    def of(self, state: ClusterState, node: str, d_cpu: float = 0.0, d_mem: float = 0.0) -> tuple[float, ...]:
        n = state.nodes[node]
        cpu = state.cpu_used[node] + d_cpu
        mem = state.mem_used[node] + d_mem
        pc, pm, pio = self.psi[node]
        cb, mb = self.cpu_base[node], self.mem_base[node]
        rc = max(0.0, cpu) / cb if cb > 0 else 1.0
        rm = max(0.0, mem) / mb if mb > 0 else 1.0
        return (cpu / n.cpu_cores, mem / n.memory_bytes, pc * rc, pm * rm, pio * rc)


def _limits(t: Thresholds) -> tuple[float | None, ...]:
    return (t.cpu, t.memory, t.pressure_cpu, t.pressure_memory, t.pressure_io)


def _excess(loads: tuple[float, ...], t: Thresholds) -> list[float]:
    return [x - lim if lim is not None else 0.0 for x, lim in zip(loads, _limits(t), strict=True)]


def _over(loads: tuple[float, ...], t: Thresholds) -> bool:
    return any(e > 1e-9 for e in _excess(loads, t))


def _within(loads: tuple[float, ...], t: Thresholds) -> bool:
    return all(lim is None or x <= lim + 1e-9 for x, lim in zip(loads, _limits(t), strict=True))


def plan_load_balancing(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    if spec.purpose is not Purpose.LOAD_BALANCING:
        spec = replace(spec, purpose=Purpose.LOAD_BALANCING)
    return _plan(snapshot, spec, model, check_end_state=True)


def _plan(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel, *, check_end_state: bool) -> Plan:
    limits = Limits.effective(spec.limits, spec.technique, snapshot.kubevirt)
    high, target = spec.balancing.high, spec.balancing.target
    scope_nodes = [n.name for n in snapshot.nodes if node_in_scope(spec, n)]
    targets = [n for n in scope_nodes if snapshot.node(n).schedulable and snapshot.node(n).healthy]
    before = ClusterState(snapshot, targets)
    state = ClusterState(snapshot, targets)
    loads = _Loads(
        {n.name: (n.pressure.cpu, n.pressure.memory, n.pressure.io) for n in snapshot.nodes},
        dict(state.cpu_used),
        dict(state.mem_used),
    )

    def over_high(s: ClusterState) -> int:
        return sum(1 for n in scope_nodes if _over(loads.of(s, n), high))

    hot = [n for n in scope_nodes if _over(loads.of(state, n), high)]
    hot.sort(key=lambda n: (-max(_excess(loads.of(state, n), target)), n))
    decisions: list[Decision] = []
    skipped: list[Skipped] = []
    unresolved: list[str] = []
    # A node that gives VMIs away never receives any in the same plan (no churn through it).
    state.targets -= set(hot)
    for node in hot:
        chosen = _relieve(state, loads, node, target, spec, limits, model, snapshot, skipped)
        if chosen is None:
            unresolved.append(node)
            continue
        decisions.extend(chosen)

    if not hot:
        reason = "no node above the high threshold"
    else:
        reason = f"{len(hot) - len(unresolved)} of {len(hot)} hot node(s) brought under the target"
        if unresolved:
            reason += "; cannot relieve (no set of movable VMIs fits elsewhere under the target): "
            reason += ", ".join(unresolved)
    status: PlanStatus | None = None
    if check_end_state and decisions:
        again = _plan(_end_snapshot(snapshot, state, loads), spec, model, check_end_state=False)
        if again.moves:
            status = PlanStatus.REJECTED
            reason += f"; rejected: its end state would trigger {len(again.moves)} more move(s)"
    return assemble(
        snapshot, spec, limits, decisions, skipped, scope_nodes, before, state,
        reason=reason, status=status, over_threshold=over_high,
    )  # fmt: skip


def _relieve(
    state: ClusterState,
    loads: _Loads,
    node: str,
    target: Thresholds,
    spec: PlanningSpec,
    limits: Limits,
    model: CostModel,
    snapshot: ClusterSnapshot,
    skipped: list[Skipped],
) -> list[Decision] | None:
    """Moves that bring `node` under `target` (applied to `state`), or None with the state left as it was."""
    candidates: list[Vmi] = []
    for vmi in sorted(state.vmis_on[node].values(), key=lambda v: v.key):
        if not vmi_in_scope(snapshot, spec, vmi):
            continue
        why = unmovable_reason(vmi) or limits.blocked_reason(vmi, snapshot.time_s)
        if why is not None:
            skipped.append(Skipped(vmi.key, node, why))
            continue
        candidates.append(vmi)
    options = [
        o
        for o in (
            _greedy(state, loads, node, target, candidates, limits, model),
            _single(state, loads, node, target, candidates, limits, model),
        )
        if o is not None
    ]
    if not options:
        return None
    best = min(options, key=lambda ds: (sum(d.cost.transferred_bytes for d in ds), len(ds)))
    for d in best:
        state.move(d.vmi, d.target)
    return best


def _excess_total(state: ClusterState, loads: _Loads, node: str, target: Thresholds) -> float:
    return sum(max(0.0, e) for e in _excess(loads.of(state, node), target))


def _relief(state: ClusterState, loads: _Loads, node: str, target: Thresholds, vmi: Vmi) -> float:
    now = loads.of(state, node)
    after = loads.of(state, node, -vmi.cpu_cores, -vmi.memory_used_bytes)
    return sum(min(e, a - b) for e, a, b in zip(_excess(now, target), now, after, strict=True) if e > 0)


def _best_target(state: ClusterState, loads: _Loads, vmi: Vmi, target: Thresholds, ranked: list[str]) -> str | None:
    for t in ranked:
        if state.blocking_reason(vmi, t) is not None:
            continue
        if _within(loads.of(state, t, vmi.cpu_cores, vmi.memory_used_bytes), target):
            return t
    return None


def _ranked_targets(state: ClusterState, loads: _Loads) -> list[str]:
    return sorted(state.targets, key=lambda t: (max(loads.of(state, t)[:2]), t))


def _score(relief: float, d: Decision) -> float:
    cost = (d.cost.transferred_bytes + _MOVE_CHARGE_BYTES) * (1.0 + d.cost.downtime_s / _DOWNTIME_SCALE_S)
    return relief / cost


def _greedy(
    state: ClusterState,
    loads: _Loads,
    node: str,
    target: Thresholds,
    candidates: list[Vmi],
    limits: Limits,
    model: CostModel,
) -> list[Decision] | None:
    chosen: list[Decision] = []
    left = list(candidates)
    try:
        while _excess_total(state, loads, node, target) > 1e-9:
            ranked = _ranked_targets(state, loads)
            best: tuple[float, Decision] | None = None
            for vmi in left:
                relief = _relief(state, loads, node, target, vmi)
                if relief <= 0:
                    continue
                t = _best_target(state, loads, vmi, target, ranked)
                if t is None:
                    continue
                bw, cost = cost_for(model, limits, state, vmi, t)
                if not cost.succeeded:
                    continue
                d = Decision(vmi, node, t, bw, cost, "")
                score = _score(relief, d)
                if best is None or score > best[0]:
                    best = (score, d)
            if best is None:
                return None
            d = best[1]
            chosen.append(_with_reason(state, node, d))
            left.remove(d.vmi)
            state.move(d.vmi, d.target)
        return chosen
    finally:
        for d in reversed(chosen):
            state.move(d.vmi, node)


def _single(
    state: ClusterState,
    loads: _Loads,
    node: str,
    target: Thresholds,
    candidates: list[Vmi],
    limits: Limits,
    model: CostModel,
) -> list[Decision] | None:
    ranked = _ranked_targets(state, loads)
    best: Decision | None = None
    for vmi in candidates:
        t = _best_target(state, loads, vmi, target, ranked)
        if t is None:
            continue
        state.move(vmi, t)
        clears = _excess_total(state, loads, node, target) <= 1e-9
        state.move(vmi, node)
        if not clears:
            continue
        bw, cost = cost_for(model, limits, state, vmi, t)
        if cost.succeeded and (best is None or cost.transferred_bytes < best.cost.transferred_bytes):
            best = Decision(vmi, node, t, bw, cost, "")
    return None if best is None else [_with_reason(state, node, best)]


def _with_reason(state: ClusterState, node: str, d: Decision) -> Decision:
    n = state.nodes[node]
    reason = (
        f"relieve {node} (cpu {100 * state.cpu_used[node] / n.cpu_cores:.0f}%, "
        f"memory {100 * state.mem_used[node] / n.memory_bytes:.0f}%) onto {d.target}"
    )
    return replace(d, reason=reason)


def _end_snapshot(snapshot: ClusterSnapshot, state: ClusterState, loads: _Loads) -> ClusterSnapshot:
    """The snapshot after the plan: VMIs on their targets, measured usage and pressure shifted by what moved."""
    vmis = tuple(
        replace(v, node=state.location[v.key]) if state.location[v.key] != v.node else v for v in snapshot.vmis
    )
    nodes = []
    for n in snapshot.nodes:
        _, _, pc, pm, pio = loads.of(state, n.name)
        nodes.append(
            replace(
                n,
                cpu_used_cores=state.cpu_used[n.name] if n.cpu_used_cores is not None else None,
                memory_used_bytes=state.mem_used[n.name] if n.memory_used_bytes is not None else None,
                pressure=NodePressure(min(1.0, pc), min(1.0, pm), min(1.0, pio)),
            )
        )
    return replace(snapshot, nodes=tuple(nodes), vmis=vmis)
