"""Builders for planner tests: small clusters as snapshot documents, parsed by the real snapshot parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livemig.core.cluster import ClusterSnapshot, KubevirtMigrationConfig
from livemig.core.planning import ModelCosts, PlanningSpec, TechniqueSpec
from livemig.core.snapshot_parser import parse_snapshot

GI = 2**30
MI = 2**20
SNAPSHOTS = Path(__file__).parents[3] / "data" / "snapshots"


def node(name: str, cpu: float = 16, memory: str = "64Gi", **extra: Any) -> dict[str, Any]:
    return {"name": name, "cpu": cpu, "memory": memory, "linkBandwidth": "10Gbit", **extra}


def vmi(name: str, on: str, cpu: float = 2, memory: str = "8Gi", dirty: str = "20Mi", **extra: Any) -> dict[str, Any]:
    return {
        "namespace": extra.pop("namespace", "prod"),
        "name": name,
        "node": on,
        "vcpus": max(1, int(cpu + 0.999)),
        "memory": memory,
        "usage": {"cpu": cpu, "memory": memory, "dirtyRate": dirty},
        **extra,
    }


def snapshot(nodes: list[dict[str, Any]], vmis: list[dict[str, Any]], **top: Any) -> ClusterSnapshot:
    doc = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "namespaces": [{"name": "prod", "labels": {"tier": "prod"}}, {"name": "dev", "labels": {"tier": "dev"}}],
        "nodes": nodes,
        "vmis": vmis,
        **top,
    }
    return parse_snapshot(doc)


def costs(spec: PlanningSpec | None = None, kubevirt: KubevirtMigrationConfig | None = None) -> ModelCosts:
    """The real performance model under the spec's technique settings."""
    return ModelCosts.for_spec(spec.technique if spec else TechniqueSpec(), kubevirt or KubevirtMigrationConfig())


class Builders:
    node = staticmethod(node)
    vmi = staticmethod(vmi)
    snapshot = staticmethod(snapshot)
    costs = staticmethod(costs)
    GI = GI
    MI = MI
    SNAPSHOTS = SNAPSHOTS


@pytest.fixture
def b() -> type[Builders]:
    return Builders


MakeCosts = Callable[..., ModelCosts]


def _topology(n: Any, key: str) -> str | None:
    if key == "kubernetes.io/hostname":
        return n.labels.get(key, n.name)
    return n.labels.get(key)


def _selector_ok(sel: Any, labels: Any) -> bool:
    return sel is None or sel.matches(labels)


def check_plan(snap: ClusterSnapshot, spec: PlanningSpec, plan: Any, *, drained: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Independent checks of every promise a plan makes (written without the planner's placement code)."""
    from livemig.core.planning.limits import Limits

    limits = Limits.effective(spec.limits, spec.technique, snap.kubevirt)
    vmis = {v.key: v for v in snap.vmis}
    nodes = {n.name: n for n in snap.nodes}
    moved = [m.vmi for m in plan.moves]
    assert len(moved) == len(set(moved)), "a VMI moves twice"
    location = {v.key: v.node for v in snap.vmis}
    for m in plan.moves:
        v = vmis[m.vmi]
        assert m.source == v.node
        assert m.target != m.source
        # scope
        scope = spec.scope
        assert _selector_ok(scope.vmi_selector, v.labels), f"{m.vmi} out of scope"
        assert _selector_ok(scope.namespace_selector, snap.namespace_labels(v.namespace)), f"{m.vmi} out of scope"
        t = nodes[m.target]
        assert _selector_ok(scope.node_selector, t.labels), f"{m.target} out of node scope"
        # movability, cooldown, budget
        assert v.live_migratable
        assert str(v.eviction_strategy) != "None"
        if v.migrations_s and limits.cooldown_s:
            assert snap.time_s - v.migrations_s[-1] >= limits.cooldown_s, f"{m.vmi} in cooldown"
        if limits.max_per_vmi is not None:
            assert sum(1 for x in v.migrations_s if snap.time_s - x < limits.window_s) < limits.max_per_vmi
        # target validity
        assert t.schedulable, f"{m.target} is cordoned"
        assert t.healthy, f"{m.target} is unhealthy"
        assert m.target not in drained
        for k, val in v.node_selector.items():
            assert t.labels.get(k) == val, f"{m.vmi} nodeSelector"
        assert v.affinity.allows_node(t), f"{m.vmi} node affinity"
        for taint in t.taints:
            if str(taint.effect) != "PreferNoSchedule":
                assert v.tolerates(taint), f"{m.vmi} on tainted {m.target}"
        assert m.predicted_bytes > 0
        location[m.vmi] = m.target
    # end-state capacity on every node that received a VMI
    receivers = {m.target for m in plan.moves}
    for name in receivers:
        n = nodes[name]
        on = [vmis[k] for k, where in location.items() if where == name]
        cpu = sum(x.cpu_cores for x in on)
        mem = sum(x.memory_used_bytes for x in on)
        if n.cpu_used_cores is not None:
            cpu = n.cpu_used_cores + sum(vmis[m.vmi].cpu_cores for m in plan.moves if m.target == name)
        if n.memory_used_bytes is not None:
            mem = n.memory_used_bytes + sum(vmis[m.vmi].memory_used_bytes for m in plan.moves if m.target == name)
        assert cpu <= n.cpu_cores * (1 + 1e-9), f"{name} CPU over capacity"
        assert mem <= n.memory_bytes * (1 + 1e-9), f"{name} memory over capacity"
    # requests on every node that receives a VMI, wave by wave (the executor starts wave k+1 once wave k has
    # finished): every pod it holds while wave k runs — its VMIs not moved in an earlier wave (one moving in wave k
    # stays until its migration ends) and the target pods of waves <= k — within allocatable, as kube-scheduler
    # admits them
    from livemig.core.capacity import launcher_requests

    wave_of = {m.vmi: m.wave for m in plan.moves}
    for name in receivers:
        n = nodes[name]
        for k in sorted({m.wave for m in plan.moves}):
            staying = [v for v in snap.vmis if v.node == name and wave_of.get(v.key, k) >= k]
            arriving = [vmis[m.vmi] for m in plan.moves if m.target == name and m.wave <= k]
            pods = staying + arriving
            cpu = n.other_cpu_requests_cores + sum(launcher_requests(v, snap.launcher).cpu_cores for v in pods)
            mem = n.other_memory_requests_bytes + sum(launcher_requests(v, snap.launcher).memory_bytes for v in pods)
            assert mem <= n.memory_bytes + 1, f"{name} memory requests over allocatable in wave {k}"
            assert cpu <= n.cpu_cores + 1e-6, f"{name} CPU requests over allocatable in wave {k}"
    # anti-affinity in the end state, both directions, for every moved VMI
    for m in plan.moves:
        v = vmis[m.vmi]
        t = nodes[m.target]
        for other_key, where in location.items():
            if other_key == v.key:
                continue
            other = vmis[other_key]
            o_node = nodes[where]
            for owner, target, owner_node, other_node in ((v, other, t, o_node), (other, v, o_node, t)):
                for term in owner.affinity.pod_anti_affinity:
                    a = _topology(owner_node, term.topology_key)
                    if a is not None and a == _topology(other_node, term.topology_key):
                        assert not term.selects(owner.namespace, target), f"anti-affinity {owner.key} / {target.key}"
    # concurrency and link bandwidth at every start instant
    for m in plan.moves:
        now = m.start_s
        running = [x for x in plan.moves if x.start_s <= now + 1e-9 and x.finish_s > now + 1e-9]
        assert len(running) <= limits.max_cluster, "cluster concurrency exceeded"
        per_src: dict[str, int] = {}
        out_bw: dict[str, float] = {}
        in_bw: dict[str, float] = {}
        for x in running:
            per_src[x.source] = per_src.get(x.source, 0) + 1
            out_bw[x.source] = out_bw.get(x.source, 0.0) + x.bandwidth_bps
            in_bw[x.target] = in_bw.get(x.target, 0.0) + x.bandwidth_bps
        assert max(per_src.values()) <= limits.max_per_node, "per-node concurrency exceeded"
        for name, bw in out_bw.items():
            assert bw <= nodes[name].link_bandwidth_bps * (1 + 1e-6)
        for name, bw in in_bw.items():
            assert bw <= nodes[name].link_bandwidth_bps * (1 + 1e-6)
        assert m.finish_s >= m.start_s
        if limits.bandwidth_cap_bps:
            assert m.bandwidth_bps <= limits.bandwidth_cap_bps


Builders.check = staticmethod(check_plan)  # type: ignore[attr-defined]
