"""Where a migration's target pod lands: `addedNodeSelector`, node selector, required affinity, taints, requests.

A small stand-in for kube-scheduler (the simulator runs no pods).  Requests are virt-launcher's as KubeVirt renders
them, summed over every pod on the node (running VMIs and in-flight target pods) by the rule the planners use
(`livemig.core.capacity`); required pod anti-affinity, both directions and any topology key, is the planners' rule
too (`livemig.core.affinity`).  Among feasible nodes the least-allocated one by requests wins (kube-scheduler's default
scoring, simplified), then the smallest name.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livemig.core.affinity import PodTopology, anti_affinity_refusal, term_keys
from livemig.core.capacity import DEFAULT_SIZING, launcher_requests, request_refusal, requested_on
from livemig.core.cluster import HOSTNAME_LABEL, LauncherSizing, Node, NodeRule, Vmi


@dataclass(frozen=True, slots=True)
class Placement:
    """One VMI (or in-flight target pod) occupying a node, for capacity and anti-affinity."""

    vmi: Vmi
    node: str


def unschedulable_reason(
    vmi: Vmi,
    node: Node,
    placements: Iterable[Placement],
    *,
    added_node_selector: Mapping[str, str] | None = None,
    node_ready: bool = True,
    sizing: LauncherSizing = DEFAULT_SIZING,
    nodes: Iterable[Node] = (),
    view: PodView | None = None,
) -> str | None:
    """Why `vmi`'s target pod cannot go to `node` (None = it fits).  `placements`: every pod in the cluster (the
    VMI's own source pod included); `nodes`: the cluster's nodes, for topology domains wider than one node; `view`:
    the same two already indexed (`PodView`), when one decision asks about many nodes."""
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
    if view is None:
        view = PodView(placements, [*nodes, node])
    others = [v for v in view.by_node.get(node.name, ()) if v.key != vmi.key]
    refused = request_refusal(node, requested_on(node, others, sizing), launcher_requests(vmi, sizing))
    if refused is not None:
        return refused
    conflict = anti_affinity_refusal(vmi, node, view.topology.in_domain, view.keys)
    if conflict is not None:
        return f"violates required pod anti-affinity ({conflict})"
    return None


class PodView:
    """The pods by node and by topology domain, built once per scheduling decision."""

    def __init__(self, placements: Iterable[Placement], nodes: Iterable[Node]) -> None:
        self.by_node: dict[str, list[Vmi]] = {}
        for p in placements:
            self.by_node.setdefault(p.node, []).append(p.vmi)
        unique = {n.name: n for n in nodes}
        self.topology = PodTopology(unique.values(), lambda name: self.by_node.get(name, ()))
        self.keys = term_keys(v for pods in self.by_node.values() for v in pods)


def pick_target_node(
    vmi: Vmi,
    source_node: str,
    nodes: Iterable[Node],
    placements: Iterable[Placement],
    *,
    added_node_selector: Mapping[str, str] | None = None,
    not_ready: frozenset[str] = frozenset(),
    sizing: LauncherSizing = DEFAULT_SIZING,
) -> str | None:
    """The node the target pod is scheduled to, or None when the pod would stay Pending (Unschedulable)."""
    pods = list(placements)
    nodes = list(nodes)
    # Indexed once for every candidate node: rebuilt per node it cost O(nodes x pods) per pod scheduled.
    view = PodView(pods, nodes)
    best: tuple[float, str] | None = None
    for node in nodes:
        if node.name == source_node:
            continue
        ready = node.name not in not_ready
        if unschedulable_reason(
            vmi,
            node,
            pods,
            added_node_selector=added_node_selector,
            node_ready=ready,
            sizing=sizing,
            nodes=nodes,
            view=view,
        ):
            continue
        others = (v for v in view.by_node.get(node.name, ()) if v.key != vmi.key)
        used = requested_on(node, others, sizing) + launcher_requests(vmi, sizing)
        score = (used.memory_bytes / node.memory_bytes + used.cpu_cores / max(node.cpu_cores, 1e-9)) / 2
        key = (score, node.name)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]
