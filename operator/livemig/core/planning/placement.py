"""Where a VMI may go: every placement constraint checked in one place, over a working copy of the cluster.

`ClusterState` is a mutable working copy private to one planner call (the planner stays a pure function): it
tracks each node's CPU and memory use and which VMIs it holds as the planner tentatively moves VMIs.
`blocking_reason(vmi, target, ...)` returns why a target is not allowed, or None: not a target candidate (cordoned,
unhealthy, out of scope, being drained), nodeSelector, required node affinity, untolerated NoSchedule/NoExecute
taints, capacity, and required pod anti-affinity in both directions.

Capacity is two rules.  Requests: the target admits the VMI's virt-launcher pod as kube-scheduler would
(`livemig.core.capacity.request_refusal`, the simulator's scheduler calls the same): the requests of everything on
the node, the node's other pods, and every pod this plan sends there, plus the new pod, within allocatable.  A VMI
the plan moves away keeps its requests on its source for the whole plan (its pod stays until the migration ends, and
a plan's moves may run together); its source pod counts for anti-affinity alike (livemig.core.affinity).  Usage:
measured (or summed) use plus the VMI's within the caller's cap (the policy's target or headroom).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from livemig.core.affinity import PodTopology, anti_affinity_refusal, term_keys
from livemig.core.capacity import Requests, launcher_requests, request_refusal, requested_on
from livemig.core.cluster import ClusterSnapshot, EvictionStrategy, Node, NodeRule, Vmi
from livemig.core.planning.spec import PlanningSpec

_EPS = 1e-9


def vmi_in_scope(snapshot: ClusterSnapshot, spec: PlanningSpec, vmi: Vmi) -> bool:
    scope = spec.scope
    if scope.vmi_selector is not None and not scope.vmi_selector.matches(vmi.labels):
        return False
    return scope.namespace_selector is None or scope.namespace_selector.matches(
        snapshot.namespace_labels(vmi.namespace)
    )


def node_in_scope(spec: PlanningSpec, node: Node) -> bool:
    return spec.scope.node_selector is None or spec.scope.node_selector.matches(node.labels)


def unmovable_reason(vmi: Vmi) -> str | None:
    """Why a VMI can never be live-migrated by livemig, or None."""
    if not vmi.live_migratable:
        return "not live-migratable"
    if vmi.eviction_strategy is EvictionStrategy.NONE:
        return "evictionStrategy None: the owner does not want it migrated"
    return None


class ClusterState:
    """Per-node usage, requests and VMI placement while a planner works.  Usage = measured if the snapshot gives
    it; requests = virt-launcher pods' (livemig.core.capacity)."""

    def __init__(self, snapshot: ClusterSnapshot, targets: Iterable[str]) -> None:
        self.snapshot = snapshot
        self.nodes: dict[str, Node] = {n.name: n for n in snapshot.nodes}
        self.targets = set(targets)
        self.cpu_used: dict[str, float] = {}
        self.mem_used: dict[str, float] = {}
        self.vmis_on: dict[str, dict[str, Vmi]] = {n.name: {} for n in snapshot.nodes}
        self.location: dict[str, str] = {}
        for vmi in snapshot.vmis:
            self.vmis_on[vmi.node][vmi.key] = vmi
            self.location[vmi.key] = vmi.node
        self.pod_requests: dict[str, Requests] = {v.key: launcher_requests(v, snapshot.launcher) for v in snapshot.vmis}
        self.requested: dict[str, Requests] = {
            n.name: requested_on(n, self.vmis_on[n.name].values(), snapshot.launcher) for n in snapshot.nodes
        }
        for node in snapshot.nodes:
            on = self.vmis_on[node.name].values()
            self.cpu_used[node.name] = (
                node.cpu_used_cores if node.cpu_used_cores is not None else sum(v.cpu_cores for v in on)
            )
            self.mem_used[node.name] = (
                node.memory_used_bytes if node.memory_used_bytes is not None else sum(v.memory_used_bytes for v in on)
            )
        # Topology keys of the VMIs' required anti-affinity terms (few): where the symmetric check looks.
        self.anti_keys = term_keys(snapshot.vmis)
        # Pods by node for anti-affinity: the VMIs placed there, plus the source pods of VMIs moved away (a source
        # pod stays until its migration ends; the plan's moves may run together).
        self.departed: dict[str, dict[str, Vmi]] = {n.name: {} for n in snapshot.nodes}
        self.topology = PodTopology(snapshot.nodes, self._pods_on)

    # -- utilisation

    def cpu_util(self, node: str) -> float:
        return self.cpu_used[node] / self.nodes[node].cpu_cores

    def mem_util(self, node: str) -> float:
        return self.mem_used[node] / self.nodes[node].memory_bytes

    def move(self, vmi: Vmi, target: str) -> None:
        source = self.location[vmi.key]
        del self.vmis_on[source][vmi.key]
        self.vmis_on[target][vmi.key] = vmi
        self.location[vmi.key] = target
        self.cpu_used[source] -= vmi.cpu_cores
        self.mem_used[source] -= vmi.memory_used_bytes
        self.cpu_used[target] += vmi.cpu_cores
        self.mem_used[target] += vmi.memory_used_bytes
        # Requests: the VMI's pod stays on its snapshot node for the whole plan; a tentative placement elsewhere
        # adds a target pod, withdrawn when the VMI moves on (or back).
        pod = self.pod_requests[vmi.key]
        if source != vmi.node:
            self.requested[source] -= pod
        else:
            self.departed[source][vmi.key] = vmi
        if target != vmi.node:
            self.requested[target] += pod
        else:
            del self.departed[target][vmi.key]

    # -- constraints

    def static_reason(self, vmi: Vmi, node: Node) -> str | None:
        """Constraints that do not change as VMIs move: selector, node affinity, taints."""
        mismatch = vmi.node_mismatch(node)
        if mismatch is None:
            return None
        rule, wanted = mismatch
        return "node affinity" if rule is NodeRule.NODE_AFFINITY else f"{rule} {wanted}"

    def request_reason(self, vmi: Vmi, target: str) -> str | None:
        """Why kube-scheduler would refuse `vmi`'s target pod on `target` by requests (None = admits)."""
        if target == vmi.node:
            return None  # its own pod is there already
        return request_refusal(self.nodes[target], self.requested[target], self.pod_requests[vmi.key])

    def fits_usage(self, vmi: Vmi, target: str, cpu_cap: float = 1.0, mem_cap: float = 1.0) -> bool:
        node = self.nodes[target]
        return self.cpu_used[target] + vmi.cpu_cores <= node.cpu_cores * cpu_cap * (1 + _EPS) and self.mem_used[
            target
        ] + vmi.memory_used_bytes <= node.memory_bytes * mem_cap * (1 + _EPS)

    def fits(self, vmi: Vmi, target: str, cpu_cap: float = 1.0, mem_cap: float = 1.0) -> bool:
        """Both capacity rules: requests within allocatable, usage within the caps."""
        return self.request_reason(vmi, target) is None and self.fits_usage(vmi, target, cpu_cap, mem_cap)

    def blocking_reason(self, vmi: Vmi, target: str, cpu_cap: float = 1.0, mem_cap: float = 1.0) -> str | None:
        """Why `vmi` may not move to `target` now (None = allowed).  Caps are fractions of the node's capacity."""
        if target == self.location[vmi.key]:
            return "already there"
        if target not in self.targets:
            return "not a target (cordoned, unhealthy, out of scope or being emptied)"
        node = self.nodes[target]
        reason = self.static_reason(vmi, node)
        if reason is not None:
            return reason
        refused = self.request_reason(vmi, target)
        if refused is not None:
            return f"{refused} (requests)"
        if not self.fits_usage(vmi, target, min(cpu_cap, 1.0), min(mem_cap, 1.0)):
            return "capacity"
        return self.anti_affinity_reason(vmi, node)

    def anti_affinity_reason(self, vmi: Vmi, node: Node) -> str | None:
        """Required pod anti-affinity, both directions (livemig.core.affinity, the simulator's rule too)."""
        return anti_affinity_refusal(vmi, node, self.topology.in_domain, self.anti_keys)

    def _pods_on(self, node: str) -> Iterator[Vmi]:
        yield from self.vmis_on[node].values()
        yield from self.departed[node].values()


def stddev(values: Iterable[float]) -> float:
    data = list(values)
    if not data:
        return 0.0
    mean = sum(data) / len(data)
    return math.sqrt(sum((x - mean) ** 2 for x in data) / len(data))


def utilisation(state: ClusterState, nodes: Iterable[str]) -> Mapping[str, tuple[float, float]]:
    return {n: (state.cpu_util(n), state.mem_util(n)) for n in nodes}
