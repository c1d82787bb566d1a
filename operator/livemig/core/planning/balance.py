"""Load balancing: bring every node above the high threshold under the target, pushing no node over the target.

For each hot node (hottest first) the planner picks VMIs to move by relief per cost: relief is the part of the
node's excess over the target a move removes (CPU, memory, and PSI pressure, scaled with CPU use), cost is the
predicted bytes on the wire (plus a fixed per-move charge) weighted by the predicted downtime.  It also tries the
single cheapest VMI that clears the whole excess, and the cheapest covering set (a covering knapsack over the CPU
and memory the node must shed, by dynamic programming), and keeps the option with the fewest bytes plus the
per-move charge.  Each VMI goes to the feasible target left least loaded.  A hot node that cannot be brought under
the target keeps all its VMIs (partial relief would only trigger the next cycle).  The end state is checked:
planning again on it must find nothing to do, otherwise the plan is rejected (no oscillation).

Hot nodes, with memory: a node is hot when a resource is above `high`, or when it was hot in the previous cycle
(`BalancingSpec.previously_hot`) and a resource is still above `high - hysteresis`.  The plan reports the hot nodes
it decided with (`Plan.hot_nodes`) for the caller to pass back next cycle (the operator keeps them in the policy's
`status.nodes`; `livemig plan --hot-nodes` takes them).

Explanations come from the same numbers: the plan's reason lists each hot node with the values above their
thresholds, hottest first (by the largest value over its target); a move's reason gives the source's values over
the target, the target's values before and after the move against the target, and the cost of the set of moves
chosen for the node against the other sets tried.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, replace

from livemig.core.cluster import ClusterSnapshot, NodePressure, Vmi
from livemig.core.planning.assemble import Decision, assemble, cost_for
from livemig.core.planning.costs import CostModel
from livemig.core.planning.explain import pct, pct_vs, size
from livemig.core.planning.framework import Plan, PlanStatus, Skipped
from livemig.core.planning.limits import Job, Limits, SlotTracker, schedule
from livemig.core.planning.placement import ClusterState, node_in_scope, unmovable_reason, vmi_in_scope
from livemig.core.planning.spec import PlanningSpec, Thresholds
from livemig.core.vocabulary import Purpose

_MOVE_CHARGE_BYTES = 256 * 2**20  # a fixed charge per move, so many tiny moves do not beat one adequate move
_DOWNTIME_SCALE_S = 1.0  # cost × (1 + downtime / this)


_DIMS = ("cpu", "memory", "pressure_cpu", "pressure_memory", "pressure_io")
_DIM_NAMES = ("cpu", "memory", "cpu pressure", "memory pressure", "io pressure")


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


def _above(loads: tuple[float, ...], t: Thresholds, word: str) -> str:
    """The values above their limit, with the limit: 'cpu 88% > high 85%, cpu pressure 35% > high 30%'."""
    return ", ".join(
        "{} {} > {} {}".format(name, *_vs(x, lim, word))
        for name, x, lim in zip(_DIM_NAMES, loads, _limits(t), strict=True)
        if lim is not None and x > lim + 1e-9
    )


def _vs(x: float, lim: float, word: str) -> tuple[str, str, str]:
    a, b = pct_vs(x, lim)
    return a, word, b


def _against(before: tuple[float, ...], after: tuple[float, ...], t: Thresholds) -> str:
    """Each value with a limit, before -> after the move, against the limit: 'cpu 20% -> 32% (target 65%)'; a
    pressure that stays 0 is left out."""
    return ", ".join(
        "{} {} -> {} (target {})".format(name, pct(b), *pct_vs(a, lim))
        for i, (name, b, a, lim) in enumerate(zip(_DIM_NAMES, before, after, _limits(t), strict=True))
        if lim is not None and (i < 2 or a > 0 or b > 0)
    )


_MAX_PHASES = 3
_HOT_LISTED = 10  # hot nodes the plan's reason details, hottest first


@dataclass
class _Pass:
    """One balancing pass over a snapshot: the moves it decides and the state they lead to."""

    snapshot: ClusterSnapshot
    state: ClusterState
    loads: _Loads
    decisions: list[Decision]
    skipped: list[Skipped]
    hot: list[str]
    unresolved: list[str]


def plan_load_balancing(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    if spec.purpose is not Purpose.LOAD_BALANCING:
        spec = replace(spec, purpose=Purpose.LOAD_BALANCING)
    limits = Limits.effective(spec.limits, spec.technique, snapshot.kubevirt)
    scope_nodes = [n.name for n in snapshot.nodes if node_in_scope(spec, n)]
    high = spec.balancing.high

    # Pass after pass until the end state triggers nothing (a node relieved in one pass may receive in the next:
    # the next phase starts when the previous one is done).  A VMI that would move twice, or no fixpoint within
    # _MAX_PHASES passes, rejects the plan: its end state would itself trigger moves.
    passes = [_pass(snapshot, spec, model, limits, scope_nodes)]
    moved = {d.vmi.key for d in passes[0].decisions}
    status: PlanStatus | None = None
    rejection = ""
    while passes[-1].decisions:
        last = passes[-1]
        # The next phase rescales the first snapshot's measured pressure (a node emptied in one phase has 0 CPU,
        # and its pressure per unit of CPU must not be lost with it).
        following = _pass(
            _end_snapshot(last.snapshot, last.state, last.loads), spec, model, limits, scope_nodes, base=passes[0].loads
        )
        if not following.decisions:
            break
        again = [d.vmi.key for d in following.decisions if d.vmi.key in moved]
        if again or len(passes) == _MAX_PHASES:
            status = PlanStatus.REJECTED
            rejection = f"; rejected: its end state would trigger {len(following.decisions)} more move(s)"
            if again:
                rejection += f", moving {', '.join(again)} again"
            break
        passes.append(following)
        moved |= {d.vmi.key for d in following.decisions}

    decisions: list[Decision] = []
    intervals: list[tuple[float, float]] = []
    offset = 0.0
    for p in passes:
        jobs = [Job(d.source, d.target, d.bandwidth_bps, d.cost.total_time_s) for d in p.decisions]
        phase = schedule(jobs, SlotTracker(limits, p.snapshot))
        intervals.extend((start + offset, finish + offset) for start, finish in phase)
        decisions.extend(p.decisions)
        offset = max((f for _, f in intervals), default=offset)

    first, final = passes[0], passes[-1]
    before = ClusterState(snapshot, first.state.targets | set(first.hot))

    def over_high(s: ClusterState) -> int:
        loads = first.loads if s is before else final.loads
        return sum(1 for n in scope_nodes if _over(loads.of(s, n), high))

    skipped: list[Skipped] = []
    seen: set[str] = set()
    for p in passes:
        for k in p.skipped:
            if k.vmi not in seen:
                seen.add(k.vmi)
                skipped.append(k)
    if not first.hot:
        reason = "no node above the high threshold"
        if spec.balancing.previously_hot:
            reason += " (nor a previously hot one inside the hysteresis band)"
    else:
        still = [n for n in scope_nodes if _over(final.loads.of(final.state, n), high)]
        reason = f"{len(first.hot) - len(still)} of {len(first.hot)} hot node(s) brought under the target"
        reason += "; hot, hottest first (largest value over its target): " + "; ".join(
            f"{n} ({_hot_why(first, before, n, spec)})" for n in first.hot[:_HOT_LISTED]
        )
        if len(first.hot) > _HOT_LISTED:
            reason += f"; and {len(first.hot) - _HOT_LISTED} more (the plan's hot nodes)"
        if len(passes) > 1:
            reason += f" in {len(passes)} phases"
        if still:
            reason += "; cannot relieve (no set of movable VMIs fits elsewhere under the target): " + ", ".join(still)
    plan = assemble(
        snapshot, spec, limits, decisions, skipped, scope_nodes, before, final.state,
        reason=reason + rejection, status=status, over_threshold=over_high, intervals=intervals,
    )  # fmt: skip
    return replace(plan, hot_nodes=tuple(sorted(first.hot)))


def _hot_why(p: _Pass, before: ClusterState, node: str, spec: PlanningSpec) -> str:
    """Why `node` was hot in pass `p` (`before`: the state that pass started from): its values above high, or above
    high - hysteresis when it was hot before."""
    loads = p.loads.of(before, node)
    above = _above(loads, spec.balancing.high, "high")
    if above:
        return above
    band = _above(loads, spec.balancing.stay_hot(), "high - hysteresis")
    return f"hot in the previous cycle and still {band}"


def _pass(
    snapshot: ClusterSnapshot,
    spec: PlanningSpec,
    model: CostModel,
    limits: Limits,
    scope_nodes: list[str],
    *,
    base: _Loads | None = None,
) -> _Pass:
    """One phase of moves.  `base`: the measured pressure and use the pressure is rescaled from (the first phase's)."""
    high, target = spec.balancing.high, spec.balancing.target
    targets = [n for n in scope_nodes if snapshot.node(n).schedulable and snapshot.node(n).healthy]
    state = ClusterState(snapshot, targets)
    loads = base or _Loads(
        {n.name: (n.pressure.cpu, n.pressure.memory, n.pressure.io) for n in snapshot.nodes},
        dict(state.cpu_used),
        dict(state.mem_used),
    )
    stay_hot = spec.balancing.stay_hot()
    previously = spec.balancing.previously_hot
    hot = [n for n in scope_nodes if _over(loads.of(state, n), stay_hot if n in previously else high)]
    hot.sort(key=lambda n: (-max(_excess(loads.of(state, n), target)), n))
    decisions: list[Decision] = []
    skipped: list[Skipped] = []
    unresolved: list[str] = []
    # A node that gives VMIs away never receives any in the same pass (no churn through it).
    state.targets -= set(hot)
    ranked = _Ranking(state)
    for node in hot:
        chosen = _relieve(state, ranked, loads, node, target, spec, limits, model, snapshot, skipped)
        if chosen is None:
            unresolved.append(node)
        else:
            decisions.extend(chosen)
    return _Pass(snapshot, state, loads, decisions, skipped, hot, unresolved)


def _relieve(
    state: ClusterState,
    ranked: _Ranking,
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
            _greedy(state, ranked, loads, node, target, candidates, limits, model),
            _single(state, ranked, loads, node, target, candidates, limits, model),
            _cover(state, ranked, loads, node, target, candidates, limits, model),
        )
        if o is not None
    ]
    if not options:
        return None
    best = min(options, key=_set_cost)
    for d in best:
        _move(state, ranked, d.vmi, d.target)
    return [replace(d, reason=f"{d.reason}; {_option_text(node, best, options)}") for d in best]


def _option_text(node: str, best: list[Decision], options: list[list[Decision]]) -> str:
    """The chosen set of moves against the other sets tried, by what they are compared on (`_set_cost`)."""

    def brief(ds: list[Decision]) -> str:
        return f"{len(ds)} move(s), {size(sum(d.cost.transferred_bytes for d in ds))}"

    mine = {d.vmi.key for d in best}
    others = sorted({brief(o) for o in options if {d.vmi.key for d in o} != mine})
    text = f"the fewest bytes that relieve {node}: {brief(best)}"
    return text + (f" (other sets: {'; '.join(others)})" if others else "")


def _excess_total(state: ClusterState, loads: _Loads, node: str, target: Thresholds) -> float:
    return sum(max(0.0, e) for e in _excess(loads.of(state, node), target))


def _relief(state: ClusterState, loads: _Loads, node: str, target: Thresholds, vmi: Vmi) -> float:
    now = loads.of(state, node)
    after = loads.of(state, node, -vmi.cpu_cores, -vmi.memory_used_bytes)
    return sum(min(e, a - b) for e, a, b in zip(_excess(now, target), now, after, strict=True) if e > 0)


def _best_target(state: ClusterState, loads: _Loads, vmi: Vmi, target: Thresholds, ranked: _Ranking) -> str | None:
    for t in ranked:
        if state.blocking_reason(vmi, t) is not None:
            continue
        if _within(loads.of(state, t, vmi.cpu_cores, vmi.memory_used_bytes), target):
            return t
    return None


class _Ranking:
    """Targets ordered least loaded first (the larger of CPU and memory utilisation), kept in step with moves."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.key = {t: self._key(t) for t in state.targets}
        self.order = sorted((k, t) for t, k in self.key.items())

    def _key(self, node: str) -> float:
        return max(self.state.cpu_util(node), self.state.mem_util(node))

    def update(self, node: str) -> None:
        if node not in self.key:
            return
        old = self.key[node]
        del self.order[bisect.bisect_left(self.order, (old, node))]
        self.key[node] = self._key(node)
        bisect.insort(self.order, (self.key[node], node))

    def __iter__(self) -> Iterator[str]:
        return (t for _, t in list(self.order))


def _move(state: ClusterState, ranking: _Ranking, vmi: Vmi, target: str) -> None:
    source = state.location[vmi.key]
    state.move(vmi, target)
    ranking.update(source)
    ranking.update(target)


def _score(relief: float, d: Decision) -> float:
    cost = (d.cost.transferred_bytes + _MOVE_CHARGE_BYTES) * (1.0 + d.cost.downtime_s / _DOWNTIME_SCALE_S)
    return relief / cost


def _greedy(
    state: ClusterState,
    ranked: _Ranking,
    loads: _Loads,
    node: str,
    target: Thresholds,
    candidates: list[Vmi],
    limits: Limits,
    model: CostModel,
) -> list[Decision] | None:
    chosen: list[Decision] = []
    left = list(candidates)
    # Each candidate's move (best target and its cost).  Targets only fill up here, so a candidate's best target
    # changes only when that target receives a VMI, and a candidate with no target never gets one.
    option: dict[str, Decision | None] = {}
    try:
        while _excess_total(state, loads, node, target) > 1e-9:
            best: tuple[float, Decision] | None = None
            for vmi in left:
                relief = _relief(state, loads, node, target, vmi)
                if relief <= 0:
                    continue
                if vmi.key not in option:
                    t = _best_target(state, loads, vmi, target, ranked)
                    found: Decision | None = None
                    if t is not None:
                        bw, cost = cost_for(model, limits, state, vmi, t)
                        found = Decision(vmi, node, t, bw, cost, "") if cost.succeeded else None
                    option[vmi.key] = found
                d = option[vmi.key]
                if d is None:
                    continue
                score = _score(relief, d)
                if best is None or score > best[0]:
                    best = (score, d)
            if best is None:
                return None
            d = best[1]
            chosen.append(_with_reason(state, loads, target, node, d))
            left.remove(d.vmi)
            _move(state, ranked, d.vmi, d.target)
            for key in [k for k, o in option.items() if o is not None and o.target == d.target]:
                del option[key]
        _prune(state, ranked, loads, node, target, chosen)
        return chosen
    finally:
        for d in reversed(chosen):
            _move(state, ranked, d.vmi, node)


def _set_cost(ds: list[Decision]) -> tuple[float, float]:
    """How options compare: bytes on the wire plus the per-move charge (so fewer, larger moves win when the bytes
    are about equal), then the total predicted downtime."""
    return (
        sum(d.cost.transferred_bytes + _MOVE_CHARGE_BYTES for d in ds),
        sum(d.cost.downtime_s for d in ds),
    )


def _prune(
    state: ClusterState, ranked: _Ranking, loads: _Loads, node: str, target: Thresholds, chosen: list[Decision]
) -> None:
    """Drop (in place, state updated) each applied move the others make unnecessary (the node stays under the
    target without it), the costliest first."""
    for d in sorted(chosen, key=lambda d: (-d.cost.transferred_bytes, d.vmi.key)):
        _move(state, ranked, d.vmi, node)
        if _excess_total(state, loads, node, target) > 1e-9:
            _move(state, ranked, d.vmi, d.target)
        else:
            chosen.remove(d)


_COVER_UNITS = 200  # resolution of the covering knapsack: 1/200 of the relief the node needs


def _needs(state: ClusterState, loads: _Loads, node: str, target: Thresholds) -> tuple[float, float] | None:
    """The CPU cores and memory bytes that must leave `node` for it to be under `target` in every dimension (PSI
    scales with use, so a pressure target is a CPU or memory target), or None if no move can get it there."""
    n = state.nodes[node]
    cpu, mem = state.cpu_used[node], state.mem_used[node]
    pc, pm, pio = loads.psi[node]
    need_cpu = need_mem = 0.0
    if target.cpu is not None:
        need_cpu = cpu - target.cpu * n.cpu_cores
    if target.memory is not None:
        need_mem = mem - target.memory * n.memory_bytes
    for p, lim, base, is_cpu in (
        (pc, target.pressure_cpu, loads.cpu_base[node], True),
        (pio, target.pressure_io, loads.cpu_base[node], True),
        (pm, target.pressure_memory, loads.mem_base[node], False),
    ):
        if lim is None or p <= 0:
            continue
        if base <= 0:
            if p > lim:
                return None
            continue
        need = (cpu if is_cpu else mem) - lim * base / p
        if is_cpu:
            need_cpu = max(need_cpu, need)
        else:
            need_mem = max(need_mem, need)
    return max(0.0, need_cpu), max(0.0, need_mem)


def _cover(
    state: ClusterState,
    ranked: _Ranking,
    loads: _Loads,
    node: str,
    target: Thresholds,
    candidates: list[Vmi],
    limits: Limits,
    model: CostModel,
) -> list[Decision] | None:
    """The cheapest set of moves that clears the node's excess: a covering knapsack (minimum bytes plus the per-move
    charge, such that the CPU and memory leaving cover what the target needs), solved by dynamic programming over
    the needed relief in 1/200 steps.  A VMI's contribution is the smaller of its shares of the CPU and of the
    memory needed, rounded down, so a set that covers in the program covers for real.  The greedy by relief per
    cost can pick a run of small moves where one or two larger ones cost fewer bytes; this finds those."""
    needs = _needs(state, loads, node, target)
    if needs is None:
        return None
    need_cpu, need_mem = needs
    if need_cpu <= 1e-9 and need_mem <= 1e-9:
        return None
    units = _COVER_UNITS
    items: list[tuple[int, float, Decision]] = []
    for vmi in candidates:
        shares = []
        if need_cpu > 1e-9:
            shares.append(vmi.cpu_cores / need_cpu)
        if need_mem > 1e-9:
            shares.append(vmi.memory_used_bytes / need_mem)
        weight = min(units, int(min(shares) * units))
        if weight <= 0:
            continue
        t = _best_target(state, loads, vmi, target, ranked)
        if t is None:
            continue
        bw, cost = cost_for(model, limits, state, vmi, t)
        if not cost.succeeded:
            continue
        items.append((weight, float(cost.transferred_bytes + _MOVE_CHARGE_BYTES), Decision(vmi, node, t, bw, cost, "")))
    if not items:
        return None
    inf = float("inf")
    best = [0.0] + [inf] * units  # best[u]: least cost of a set covering at least u units
    took: list[list[bool]] = []
    for weight, cost_bytes, _ in items:
        row = [False] * (units + 1)
        for u in range(units, 0, -1):
            prev = best[max(0, u - weight)] + cost_bytes
            if prev < best[u]:
                best[u] = prev
                row[u] = True
        took.append(row)
    if best[units] == inf:
        return None
    picked: list[Decision] = []
    u = units
    for i in range(len(items) - 1, -1, -1):
        if u > 0 and took[i][u]:
            picked.append(items[i][2])
            u = max(0, u - items[i][0])
    # Apply the set, biggest first, each onto the target then left least loaded under the target.
    chosen: list[Decision] = []
    try:
        for d in sorted(picked, key=lambda d: (-d.vmi.cpu_cores, -d.vmi.memory_used_bytes, d.vmi.key)):
            t = _best_target(state, loads, d.vmi, target, ranked)
            if t is None:
                return None
            if t != d.target:
                bw, cost = cost_for(model, limits, state, d.vmi, t)
                if not cost.succeeded:
                    return None
                d = Decision(d.vmi, node, t, bw, cost, "")
            chosen.append(_with_reason(state, loads, target, node, d))
            _move(state, ranked, d.vmi, d.target)
        if _excess_total(state, loads, node, target) > 1e-9:
            return None
        _prune(state, ranked, loads, node, target, chosen)
        return list(chosen)
    finally:
        for d in reversed(chosen):
            _move(state, ranked, d.vmi, node)


def _single(
    state: ClusterState,
    ranked: _Ranking,
    loads: _Loads,
    node: str,
    target: Thresholds,
    candidates: list[Vmi],
    limits: Limits,
    model: CostModel,
) -> list[Decision] | None:
    best: Decision | None = None
    for vmi in candidates:
        t = _best_target(state, loads, vmi, target, ranked)
        if t is None:
            continue
        _move(state, ranked, vmi, t)
        clears = _excess_total(state, loads, node, target) <= 1e-9
        _move(state, ranked, vmi, node)
        if not clears:
            continue
        bw, cost = cost_for(model, limits, state, vmi, t)
        if cost.succeeded and (best is None or cost.transferred_bytes < best.cost.transferred_bytes):
            best = Decision(vmi, node, t, bw, cost, "")
    return None if best is None else [_with_reason(state, loads, target, node, best)]


def _with_reason(state: ClusterState, loads: _Loads, target: Thresholds, node: str, d: Decision) -> Decision:
    """Why this move (before it is applied to `state`): the source's values over the target, and the target's
    values before and after it."""
    v = d.vmi
    over = _above(loads.of(state, node), target, "target") or "under the target"
    there = _against(loads.of(state, d.target), loads.of(state, d.target, v.cpu_cores, v.memory_used_bytes), target)
    reason = f"relieve {node} ({over}); to {d.target}, the least loaded that stays under the target: {there}"
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
