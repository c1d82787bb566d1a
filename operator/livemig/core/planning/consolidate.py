"""Consolidation: empty whole nodes, least loaded first, down to the fewest nodes that keep the headroom, moving
the fewest bytes.

1. Nodes that can be released: schedulable, healthy, in scope, under `lowUtilisation` (if set), and holding only
   VMIs livemig may move now (in scope, live-migratable, out of cooldown, within budget, predicted to succeed).
   Every other node is kept.
2. For a node count m from the lower bound upwards, choose which m nodes to keep: the pinned ones plus the
   releasable ones that hold the most bytes (what releasing them would cost), or the largest ones; then pack the
   VMIs of the released nodes into the kept nodes, biggest first, best fit, each kept node staying under
   (1 − headroom) of its CPU and memory by usage and admitting every incoming virt-launcher pod by requests (as
   kube-scheduler does, `livemig.core.capacity`), every placement constraint honoured; a VMI that fits nowhere is
   placed by a repair (it takes a smaller VMI's place) or an exchange (two placed VMIs swap nodes to gather room).
   The first m that packs wins; among its candidate keep-sets, the one moving the fewest bytes.
3. Moves are ordered node by node, the least loaded node first, so nodes empty one after another.

A move's reason gives its node's utilisation against `lowUtilization`, the bytes resident there that order the
nodes, and the receiving node's utilisation after the move against the headroom's cap.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from livemig.core.capacity import request_refusal
from livemig.core.cluster import ClusterSnapshot, Vmi
from livemig.core.planning.assemble import Decision, assemble, cost_for
from livemig.core.planning.costs import CostModel
from livemig.core.planning.explain import ordinal, pct
from livemig.core.planning.explain import size as size_text
from livemig.core.planning.framework import NodeAction, Plan, Skipped
from livemig.core.planning.limits import Limits
from livemig.core.planning.placement import ClusterState, node_in_scope, unmovable_reason, vmi_in_scope
from livemig.core.planning.spec import PlanningSpec

_EXTRA_NODES_TRIED = 6  # node counts tried above the lower bound before giving up on fewer nodes
_COST_ROUNDS = 4  # re-plans after pinning nodes whose VMIs are predicted to fail


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
        why = _pin_reason(snapshot, spec, limits, before, name, skipped)
        (pinned if why else releasable).append(name)

    # Kept nodes need room for everything on the active nodes: its usage under the headroom, its requests within
    # allocatable.
    total_cpu = sum(before.cpu_used[n] for n in active)
    total_mem = sum(before.mem_used[n] for n in active)
    lower = max(
        _lower_bound(snapshot, active, total_cpu, total_mem, cap),
        _lower_bound(
            snapshot,
            active,
            sum(before.requested[n].cpu_cores for n in active),
            sum(before.requested[n].memory_bytes for n in active),
            (1.0, 1.0),
        ),
    )
    best: _Packing | None = None
    for _ in range(_COST_ROUNDS):
        best = _search(snapshot, before, pinned, releasable, cap, lower, len(active), cfg.max_nodes)
        if best is None:
            break
        # Only now ask the model about the VMIs that would move; a VMI predicted to fail pins its node.
        failing: set[str] = set()
        for vmi, target in best.placements:
            bw, cost = cost_for(model, limits, before, vmi, target)
            if not cost.succeeded:
                skipped.append(Skipped(vmi.key, vmi.node, f"migration predicted to fail ({cost.outcome})"))
                failing.add(vmi.node)
        if not failing:
            break
        pinned += sorted(failing)
        releasable = [n for n in releasable if n not in failing]
        best = None

    state = ClusterState(snapshot, active)
    decisions: list[Decision] = []
    released: list[str] = []
    if best is not None and best.released:
        # Empty the least loaded nodes first.
        released = sorted(best.released, key=lambda n: (_resident_bytes(before, n), n))
        target_of = {v.key: t for v, t in best.placements}
        for rank, node in enumerate(released, 1):
            why = (
                f"empty {node} ({_low_text(before, node, cfg.low_cpu, cfg.low_memory)}; "
                f"{size_text(_resident_bytes(before, node))} resident, {ordinal(rank)} of {len(released)} released, "
                "least resident first)"
            )
            for vmi in sorted(before.vmis_on[node].values(), key=lambda v: (-v.memory_bytes, v.key)):
                target = target_of[vmi.key]
                bw, cost = cost_for(model, limits, state, vmi, target)
                state.move(vmi, target)
                where = (
                    f"to {target}, kept: cpu {pct(state.cpu_util(target))} (cap {pct(cap[0])}), "
                    f"memory {pct(state.mem_util(target))} (cap {pct(cap[1])}) with it"
                )
                decisions.append(Decision(vmi, node, target, bw, cost, f"{why}; {where}"))
    actions = [
        NodeAction(n, cordon=cfg.cordon_released, labels=tuple(sorted(cfg.label_released.items())))
        for n in released
        if cfg.cordon_released or cfg.label_released
    ]
    used_before = sum(1 for n in active if before.vmis_on[n])
    reason = (
        f"release {len(released)} of {len(active)} nodes ({used_before} in use, lower bound {lower}, "
        f"{len(releasable)} below lowUtilization with only movable VMIs) "
        f"keeping {100 * cfg.headroom_cpu:.0f}% CPU and {100 * cfg.headroom_memory:.0f}% memory headroom"
        if released
        else f"no node can be released while keeping the headroom ({len(releasable)} of {len(active)} nodes "
        "below lowUtilization with only movable VMIs)"
    )
    return assemble(
        snapshot, spec, limits, decisions, skipped, scope_nodes, before, state,
        reason=reason, released=released, node_actions=actions,
    )  # fmt: skip


def _low_text(state: ClusterState, node: str, low_cpu: float | None, low_memory: float | None) -> str:
    """A released node's utilisation against lowUtilization: 'cpu 3% < 20%, memory 10% < 25%'."""
    parts = [
        f"{name} {pct(used)}" + (f" < {pct(low)}" if low is not None else "")
        for name, used, low in (
            ("cpu", state.cpu_util(node), low_cpu),
            ("memory", state.mem_util(node), low_memory),
        )
    ]
    return ", ".join(parts)


def _search(
    snapshot: ClusterSnapshot,
    state: ClusterState,
    pinned: Sequence[str],
    releasable: Sequence[str],
    cap: tuple[float, float],
    lower: int,
    active: int,
    max_nodes: int | None,
) -> _Packing | None:
    """The packing with the fewest kept nodes (then the fewest bytes), trying node counts from the lower bound.

    For each count, each ranking proposes the nodes to keep and the others are packed into them.  Counts are tried
    one by one up to _EXTRA_NODES_TRIED above the lower bound; beyond, in doubling steps (the bound can be far below
    what packs: requests, anti-affinity and selectors are not in it), then back down by bisection to the fewest that
    packed (packing is not strictly monotone in the count, so this is the fewest found, not proven fewest).
    """
    lower = max(lower, len(pinned))
    upper = min(active, lower + _EXTRA_NODES_TRIED)
    if max_nodes is not None:
        # Release at most max_nodes per plan: keep at least all but that many of the active nodes.
        lower = max(lower, active - max_nodes)
        upper = max(upper, lower)
    binding = _binding_resource(snapshot, state, [*pinned, *releasable], cap)

    def attempt(m: int) -> _Packing | None:
        attempts = []
        for rank in _RANKINGS:
            extra = m - len(pinned)
            if extra < 0:
                continue
            ordered = sorted(releasable, key=lambda n, rank=rank: rank(snapshot, state, n, binding))  # type: ignore[misc]
            packing, _ = _pack(state, [*pinned, *ordered[:extra]], ordered[extra:], cap)
            if packing is not None:
                attempts.append(packing)
        return min(attempts, key=lambda p: (p.bytes_moved, p.released)) if attempts else None

    for m in range(lower, upper + 1):
        found = attempt(m)
        if found is not None:
            return found
    # Keeping every active node releases nothing: the counts worth trying stop one below.
    failed, step = upper, 2
    best: tuple[int, _Packing] | None = None
    while best is None and failed < active - 1:
        m = min(active - 1, upper + step)
        found = attempt(m)
        if found is None:
            failed, step = m, step * 2
        else:
            best = (m, found)
    while best is not None and best[0] - failed > 1:
        m = (failed + best[0]) // 2
        found = attempt(m)
        if found is None:
            failed = m
        else:
            best = (m, found)
    return None if best is None else best[1]


def _binding_resource(
    snapshot: ClusterSnapshot, state: ClusterState, nodes: Sequence[str], cap: tuple[float, float]
) -> int:
    """0 when CPU is the scarcer resource under the headroom, 1 when memory is."""
    cpu = sum(state.cpu_used[n] for n in nodes) / max(1e-9, sum(state.nodes[n].cpu_cores * cap[0] for n in nodes))
    mem = sum(state.mem_used[n] for n in nodes) / max(1e-9, sum(state.nodes[n].memory_bytes * cap[1] for n in nodes))
    return 0 if cpu >= mem else 1


def _pin_reason(
    snapshot: ClusterSnapshot,
    spec: PlanningSpec,
    limits: Limits,
    state: ClusterState,
    name: str,
    skipped: list[Skipped],
) -> str | None:
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


RankKey = tuple[float, float, str]


def _by_resident_bytes(snapshot: ClusterSnapshot, state: ClusterState, node: str, binding: int) -> RankKey:
    """Keep the nodes holding the most bytes: releasing them would cost the most."""
    return (-_resident_bytes(state, node), 0.0, node)


def _by_capacity(snapshot: ClusterSnapshot, state: ClusterState, node: str, binding: int) -> RankKey:
    """Keep the largest nodes (fewest nodes for mixed sizes), then the fullest."""
    n = snapshot.node(node)
    return (-(n.cpu_cores / 1000 + n.memory_bytes / 2**40), -_resident_bytes(state, node), node)


def _by_binding_use(snapshot: ClusterSnapshot, state: ClusterState, node: str, binding: int) -> RankKey:
    """Keep the nodes using most of the scarce resource: what moves then needs least of it."""
    used = state.cpu_used[node] if binding == 0 else state.mem_used[node]
    return (-used, -_resident_bytes(state, node), node)


_RANKINGS = (_by_resident_bytes, _by_capacity, _by_binding_use)


def _pack(
    state: ClusterState, kept: Sequence[str], released: Sequence[str], cap: tuple[float, float]
) -> tuple[_Packing | None, list[Vmi]]:
    """Best-fit decreasing of the released nodes' VMIs into the kept nodes (CPU room as the sort key), with a
    one-level repair: a VMI that fits nowhere may take the place of a smaller VMI placed earlier that fits
    elsewhere (only VMIs that move anyway are shuffled, so no extra bytes).  Returns the packing, or None and
    the VMIs that fit nowhere."""
    moving = [v for n in released for v in state.vmis_on[n].values()]
    if not moving:
        return _Packing(tuple(kept), tuple(released), (), 0), []
    nodes = state.nodes
    # Not enough room in total: no packing exists (and trying one, with its repairs, is the expensive part).
    if (
        sum(v.cpu_cores for v in moving) > sum(nodes[n].cpu_cores * cap[0] - state.cpu_used[n] for n in kept) + 1e-9
        or sum(v.memory_used_bytes for v in moving)
        > sum(nodes[n].memory_bytes * cap[1] - state.mem_used[n] for n in kept) + 1e-6
        or sum(state.pod_requests[v.key].memory_bytes for v in moving)
        > sum(nodes[n].memory_bytes - state.requested[n].memory_bytes for n in kept) + 1.0
    ):
        return None, moving
    # Normalised size: the larger of the CPU and memory shares of an average kept node.
    avg_cpu = sum(nodes[n].cpu_cores for n in kept) / len(kept)
    avg_mem = sum(nodes[n].memory_bytes for n in kept) / len(kept)
    moving.sort(key=lambda v: (-max(v.cpu_cores / avg_cpu, v.memory_used_bytes / avg_mem), v.key))
    saved_targets = state.targets
    state.targets = set(kept)
    packer = _Packer(state, kept, cap)
    failed: list[Vmi] = []
    try:
        for vmi in moving:
            target = packer.find(vmi)
            if target is not None:
                packer.place(vmi, target)
            elif not packer.repair(vmi) and not packer.exchange(vmi):
                failed.append(vmi)  # this packing fails: stop here (the next node count is tried instead)
                break
        placements = tuple((v, packer.where[v.key]) for v in moving if v.key in packer.where)
    finally:
        packer.undo()
        state.targets = saved_targets
    if failed:
        return None, failed
    return _Packing(tuple(kept), tuple(released), placements, int(sum(v.memory_bytes for v in moving))), []


class _Packer:
    """Room left on the kept nodes, sorted by CPU room, and the moving VMIs placed on each.

    The shared `ClusterState` is only updated (and restored by `undo`) when some VMI has anti-affinity terms: the
    other constraints do not depend on where the other VMIs are.
    """

    _REPAIR_NODES = 16

    def __init__(self, state: ClusterState, kept: Sequence[str], cap: tuple[float, float]) -> None:
        self.state = state
        nodes = state.nodes
        self.cpu_room = {n: nodes[n].cpu_cores * cap[0] - state.cpu_used[n] for n in kept}
        self.mem_room = {n: nodes[n].memory_bytes * cap[1] - state.mem_used[n] for n in kept}
        self.keys = sorted((self.cpu_room[n], n) for n in kept)
        self.requested = {n: state.requested[n] for n in kept}
        self.placed: dict[str, dict[str, Vmi]] = {n: {} for n in kept}
        self.where: dict[str, str] = {}
        self.track = bool(state.anti_keys)

    def fits(self, vmi: Vmi, node: str) -> bool:
        return (
            self.cpu_room[node] >= vmi.cpu_cores - 1e-9
            and self.mem_room[node] >= vmi.memory_used_bytes - 1e-6
            and request_refusal(self.state.nodes[node], self.requested[node], self.state.pod_requests[vmi.key]) is None
            and _placeable(self.state, vmi, node)
        )

    def find(self, vmi: Vmi, exclude: str | None = None) -> str | None:
        """Best fit on CPU: the feasible node with the least CPU room that still holds the VMI."""
        keys = self.keys
        need_mem = vmi.memory_used_bytes - 1e-6
        # An index, not the rule: a node whose requested memory leaves less than the pod's is passed over before the
        # full check (`fits`, which asks request_refusal).  Most scanned nodes fail here once the kept nodes fill.
        pod_mem = self.state.pod_requests[vmi.key].memory_bytes - 1.0
        mem_room, requested, nodes = self.mem_room, self.requested, self.state.nodes
        for i in range(bisect.bisect_left(keys, (vmi.cpu_cores - 1e-9, "")), len(keys)):
            n = keys[i][1]
            if mem_room[n] < need_mem or nodes[n].memory_bytes - requested[n].memory_bytes < pod_mem:
                continue
            if n != exclude and self.fits(vmi, n):
                return n
        return None

    def _update(self, node: str, d_cpu: float, d_mem: float) -> None:
        del self.keys[bisect.bisect_left(self.keys, (self.cpu_room[node], node))]
        self.cpu_room[node] += d_cpu
        self.mem_room[node] += d_mem
        bisect.insort(self.keys, (self.cpu_room[node], node))

    def place(self, vmi: Vmi, node: str) -> None:
        self._update(node, -vmi.cpu_cores, -vmi.memory_used_bytes)
        self.requested[node] += self.state.pod_requests[vmi.key]
        self.placed[node][vmi.key] = vmi
        self.where[vmi.key] = node
        if self.track:
            self.state.move(vmi, node)

    def unplace(self, vmi: Vmi, node: str) -> None:
        self._update(node, vmi.cpu_cores, vmi.memory_used_bytes)
        self.requested[node] -= self.state.pod_requests[vmi.key]
        del self.placed[node][vmi.key]
        del self.where[vmi.key]
        if self.track:
            self.state.move(vmi, vmi.node)

    def undo(self) -> None:
        if self.track:
            for node in self.placed.values():
                for vmi in node.values():
                    self.state.move(vmi, vmi.node)

    def repair(self, vmi: Vmi) -> bool:
        """Make room for `vmi` on a node by moving one smaller placed VMI to another node."""
        for _, n in reversed(self.keys[-self._REPAIR_NODES :]):
            if self.state.static_reason(vmi, self.state.nodes[n]) is not None:
                continue
            for other in sorted(self.placed[n].values(), key=lambda v: (v.cpu_cores, v.key)):
                if (
                    self.cpu_room[n] + other.cpu_cores < vmi.cpu_cores - 1e-9
                    or self.mem_room[n] + other.memory_used_bytes < vmi.memory_used_bytes - 1e-6
                ):
                    continue
                self.unplace(other, n)
                if self.fits(vmi, n):
                    self.place(vmi, n)
                    elsewhere = self.find(other, exclude=n)
                    if elsewhere is not None:
                        self.place(other, elsewhere)
                        return True
                    self.unplace(vmi, n)
                self.place(other, n)
        return False

    _EXCHANGE_NODES = 24

    def exchange(self, vmi: Vmi) -> bool:
        """Make room for `vmi` on a node `a` by swapping one of its placed VMIs for a smaller one placed on another
        node `b`: the swap shifts room from `b` to `a` (the total room of the two stays the same), which gathers the
        slivers of room best fit leaves into a gap `vmi` fits.  Only VMIs that move anyway are swapped."""
        top = [n for _, n in reversed(self.keys[-self._EXCHANGE_NODES :])]
        for a in top:
            if self.state.static_reason(vmi, self.state.nodes[a]) is not None:
                continue
            need_cpu = vmi.cpu_cores - self.cpu_room[a]
            need_mem = vmi.memory_used_bytes - self.mem_room[a]
            if need_cpu <= 1e-9 and need_mem <= 1e-6:
                continue  # room enough: something else (anti-affinity) blocks it
            if not any(x.cpu_cores >= need_cpu - 1e-9 for x in self.placed[a].values()):
                continue  # no VMI placed on `a` frees enough CPU even for an empty swap partner
            for b in top:
                if b == a or self.cpu_room[a] + self.cpu_room[b] < vmi.cpu_cores - 1e-9:
                    continue
                if self.mem_room[a] + self.mem_room[b] < vmi.memory_used_bytes - 1e-6:
                    continue
                if self._swap_into(vmi, a, b, need_cpu, need_mem):
                    return True
        return False

    def _swap_into(self, vmi: Vmi, a: str, b: str, need_cpu: float, need_mem: float) -> bool:
        for x in list(self.placed[a].values()):
            for y in list(self.placed[b].values()):
                d_cpu = x.cpu_cores - y.cpu_cores
                d_mem = x.memory_used_bytes - y.memory_used_bytes
                if not (need_cpu - 1e-9 <= d_cpu <= self.cpu_room[b] + 1e-9):
                    continue
                if not (need_mem - 1e-6 <= d_mem <= self.mem_room[b] + 1e-6):
                    continue
                self.unplace(x, a)
                self.unplace(y, b)
                if self.fits(y, a):
                    self.place(y, a)
                    if self.fits(x, b):
                        self.place(x, b)
                        if self.fits(vmi, a):
                            self.place(vmi, a)
                            return True
                        self.unplace(x, b)
                    self.unplace(y, a)
                self.place(x, a)
                self.place(y, b)
        return False


def _placeable(state: ClusterState, vmi: Vmi, target: str) -> bool:
    node = state.nodes[target]
    return state.static_reason(vmi, node) is None and state.anti_affinity_reason(vmi, node) is None
