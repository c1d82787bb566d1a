"""Where a migration's target pod lands: `addedNodeSelector`, node selector, required affinity, taints, capacity.

A small stand-in for kube-scheduler (the simulator runs no pods).  Requests follow virt-launcher's defaults:
memory = guest memory, CPU = vCPUs / 10 (KubeVirt's default `cpuAllocationRatio` of 10).  Among feasible nodes the
least-allocated one wins (kube-scheduler's default scoring, simplified), then the smallest name.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livemig.core.cluster import HOSTNAME_LABEL, Node, NodeRule, Vmi

CPU_ALLOCATION_RATIO = 10.0


@dataclass(frozen=True, slots=True)
class Placement:
    """One VMI (or in-flight target pod) occupying a node, for capacity and anti-affinity."""

    vmi: Vmi
    node: str


def cpu_request_cores(vmi: Vmi) -> float:
    return vmi.vcpus / CPU_ALLOCATION_RATIO


def unschedulable_reason(
    vmi: Vmi,
    node: Node,
    placements: Iterable[Placement],
    *,
    added_node_selector: Mapping[str, str] | None = None,
    node_ready: bool = True,
) -> str | None:
    """Why `vmi`'s target pod cannot go to `node` (None = it fits)."""
    if not node_ready or not node.healthy:
        return "node is not ready"
    if not node.schedulable:
        return "node is cordoned"
    labels = {HOSTNAME_LABEL: node.name, **node.labels}
    for key, value in (added_node_selector or {}).items():
        if labels.get(key) != value:
            return f"node does not match addedNodeSelector {key}={value}"
    mismatch = vmi.node_mismatch(node, labels)
    if mismatch is not None:
        rule, wanted = mismatch
        if rule is NodeRule.NODE_AFFINITY:
            return "node does not match required node affinity"
        if rule is NodeRule.TAINT:
            return f"untolerated taint {wanted}"
        return f"node does not match nodeSelector {wanted}"
    cpu = 0.0
    memory = 0.0
    others: list[Vmi] = []
    for p in placements:
        if p.node != node.name or p.vmi.key == vmi.key:
            continue
        cpu += cpu_request_cores(p.vmi)
        memory += p.vmi.memory_bytes
        others.append(p.vmi)
    if memory + vmi.memory_bytes > node.memory_bytes:
        return "insufficient memory"
    if cpu + cpu_request_cores(vmi) > node.cpu_cores:
        return "insufficient cpu"
    for term in vmi.affinity.pod_anti_affinity:
        if any(term.selects(vmi.namespace, other) for other in others):
            return "violates required pod anti-affinity"
    return None


def pick_target_node(
    vmi: Vmi,
    source_node: str,
    nodes: Iterable[Node],
    placements: Iterable[Placement],
    *,
    added_node_selector: Mapping[str, str] | None = None,
    not_ready: frozenset[str] = frozenset(),
) -> str | None:
    """The node the target pod is scheduled to, or None when the pod would stay Pending (Unschedulable)."""
    by_node: dict[str, list[Placement]] = {}
    for p in placements:
        by_node.setdefault(p.node, []).append(p)
    best: tuple[float, str] | None = None
    for node in nodes:
        if node.name == source_node:
            continue
        here = by_node.get(node.name, [])
        if unschedulable_reason(
            vmi, node, here, added_node_selector=added_node_selector, node_ready=node.name not in not_ready
        ):
            continue
        used_mem = sum(p.vmi.memory_bytes for p in here if p.vmi.key != vmi.key) + vmi.memory_bytes
        used_cpu = sum(cpu_request_cores(p.vmi) for p in here if p.vmi.key != vmi.key) + cpu_request_cores(vmi)
        score = (used_mem / node.memory_bytes + used_cpu / max(node.cpu_cores, 1e-9)) / 2
        key = (score, node.name)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]
