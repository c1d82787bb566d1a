"""The cluster snapshot: nodes, VMIs and KubeVirt's migration settings, as frozen value objects.

A snapshot is what every planner reads and what the simulator's scenario files start from (a scenario is a valid
snapshot).  Its parser is `livemig.core.snapshot_parser`; the schema is documented field by field in
docs/snapshot.md.

Units: memory in bytes (`memory_bytes`), CPU in cores (`cpu_cores`), rates in bytes per second (`*_bps`), times in
seconds (`*_s`; absolute times are seconds since the Unix epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from livemig.core.kubevirt import KubevirtMigrationConfig
from livemig.core.profiles import AnyProfile
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement

API_VERSION = "livemig.io/v1alpha1"
KINDS = ("ClusterSnapshot", "Scenario")
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_LINK_BANDWIDTH_BPS = 10e9 / 8  # 10 Gbit/s
# Beyond these a VMI's numbers are garbage (QEMU's x86 machines stop at 4096 vCPUs), not a VM to place: it is left
# out of the snapshot and reported, instead of a VM no node fits that every planner would carry along.
MAX_VMI_VCPUS = 16384
MAX_VMI_MEMORY_BYTES = float(2**50)
#: Top-level keys of a scenario file that the snapshot parser accepts and leaves to the simulator.
SCENARIO_KEYS = frozenset({"simulation", "faults", "kubevirtPolicies"})

Labels = Mapping[str, str]
_EMPTY: Labels = MappingProxyType({})
#: The name this module gave a selector requirement; one implementation, in livemig.core.selectors.
LabelRequirement = LabelSelectorRequirement


class EvictionStrategy(StrEnum):
    NONE = "None"
    LIVE_MIGRATE = "LiveMigrate"
    LIVE_MIGRATE_IF_POSSIBLE = "LiveMigrateIfPossible"
    EXTERNAL = "External"


class NodeRule(StrEnum):
    """A VMI's static placement rules, in the order `Vmi.node_mismatch` checks them."""

    NODE_SELECTOR = "nodeSelector"
    NODE_AFFINITY = "nodeAffinity"
    TAINT = "taint"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


# --------------------------------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: TaintEffect = TaintEffect.NO_SCHEDULE


@dataclass(frozen=True, slots=True)
class Toleration:
    """A Kubernetes toleration (operator Equal or Exists; empty key with Exists tolerates everything)."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: TaintEffect | None = None  # None = all effects

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return self.key in ("", taint.key)
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class NodePressure:
    """PSI "some" averages as fractions 0..1."""

    cpu: float = 0.0
    memory: float = 0.0
    io: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """A required node-affinity term: all its expressions must hold (`metadata.name` matchFields key supported)."""

    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, node: Node) -> bool:
        labels = node.labels if not any(r.key == "metadata.name" for r in self.match_expressions) else node.field_labels
        return all(r.matches(labels) for r in self.match_expressions)


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """A required pod (anti-)affinity term: VMIs matching `selector` in `namespaces` (None = the VMI's own).
    No selector selects nothing, as in Kubernetes (an empty one selects everything); see livemig.core.affinity."""

    selector: LabelSelector | None
    topology_key: str = HOSTNAME_LABEL
    namespaces: tuple[str, ...] | None = None

    def selects(self, owner_namespace: str, other: Vmi) -> bool:
        if self.selector is None:
            return False
        namespaces = self.namespaces if self.namespaces is not None else (owner_namespace,)
        return other.namespace in namespaces and self.selector.matches(other.labels)


@dataclass(frozen=True, slots=True)
class Affinity:
    """The supported subset of Kubernetes Affinity (see docs/snapshot.md); preferred terms are ignored."""

    node_terms: tuple[NodeSelectorTerm, ...] = ()  # OR-ed; empty = any node
    pod_anti_affinity: tuple[PodAffinityTerm, ...] = ()

    def allows_node(self, node: Node) -> bool:
        return not self.node_terms or any(t.matches(node) for t in self.node_terms)


@dataclass(frozen=True, slots=True)
class LauncherSizing:
    """KubeVirt's settings that size virt-launcher pods (`livemig.core.capacity`), from the KubeVirt CR's
    `spec.configuration`: `developerConfiguration.memoryOvercommit` (percent), `developerConfiguration
    .cpuAllocationRatio`, `additionalGuestMemoryOverheadRatio`.  KubeVirt's defaults."""

    memory_overcommit_percent: int = 100
    cpu_allocation_ratio: int = 10
    additional_guest_memory_overhead_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """Measured node usage as profiles (optional in a snapshot; else the sum of the node's VMIs)."""

    cpu: AnyProfile | None = None
    memory: AnyProfile | None = None


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    cpu_cores: float
    memory_bytes: float
    labels: Labels = field(default_factory=lambda: _EMPTY)
    taints: tuple[Taint, ...] = ()
    schedulable: bool = True
    healthy: bool = True
    link_bandwidth_bps: float = DEFAULT_LINK_BANDWIDTH_BPS
    pressure: NodePressure = NodePressure()
    usage: NodeUsage | None = None
    # Measured usage at the snapshot's usage time (None = use the sum of the node's VMIs).
    cpu_used_cores: float | None = None
    memory_used_bytes: float | None = None
    # Requests of the node's pods other than virt-launchers (DaemonSets, system pods, ...).
    other_cpu_requests_cores: float = 0.0
    other_memory_requests_bytes: float = 0.0

    @property
    def field_labels(self) -> Labels:
        """Labels plus `metadata.name`, for node-affinity `matchFields`."""
        return {**self.labels, "metadata.name": self.name}

    def topology_value(self, key: str) -> str | None:
        if key == HOSTNAME_LABEL:
            return self.labels.get(key, self.name)
        return self.labels.get(key)

    def blocking_taints(self) -> tuple[Taint, ...]:
        return tuple(t for t in self.taints if t.effect != TaintEffect.PREFER_NO_SCHEDULE)


@dataclass(frozen=True, slots=True)
class VmiUsage:
    """Usage profiles of a VMI: CPU (cores), memory (bytes), dirty rate (bytes/s)."""

    cpu: AnyProfile
    memory: AnyProfile
    dirty_rate: AnyProfile


@dataclass(frozen=True, slots=True)
class Vmi:
    namespace: str
    name: str
    node: str
    vcpus: int
    memory_bytes: float  # guest memory size: what a migration moves
    usage: VmiUsage
    # Usage evaluated at the snapshot's usage time:
    cpu_cores: float  # CPU demand (cores)
    memory_used_bytes: float  # memory demand (bytes)
    dirty_rate_bps: float  # bytes/s
    labels: Labels = field(default_factory=lambda: _EMPTY)
    working_set_bytes: float | None = None
    node_selector: Labels = field(default_factory=lambda: _EMPTY)
    affinity: Affinity = Affinity()
    tolerations: tuple[Toleration, ...] = ()
    eviction_strategy: EvictionStrategy = EvictionStrategy.LIVE_MIGRATE
    live_migratable: bool = True
    migrations_s: tuple[float, ...] = ()  # finish times of recent migrations (epoch seconds), oldest first
    backend: str | None = None  # scenario-only: sim | qemu
    # The VMI's own `spec.domain.resources.requests` (None = unset: KubeVirt derives them, livemig.core.capacity)
    # and `overcommitGuestOverhead` (true: virt-launcher's overhead is not requested).
    cpu_request_cores: float | None = None
    memory_request_bytes: float | None = None
    overcommit_guest_overhead: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def tolerates(self, taint: Taint) -> bool:
        return any(t.tolerates(taint) for t in self.tolerations)

    def node_mismatch(self, node: Node, labels: Labels | None = None) -> tuple[NodeRule, str] | None:
        """The first of this VMI's static placement rules that `node` breaks, with what it asked for, or None:
        nodeSelector (`key=value`), required node affinity (``), an untolerated blocking taint (`key=value:effect`).
        `labels` are the node's labels as the matcher sees them (default `node.labels`).  The planners and the
        simulator's scheduler share this check and word their own reasons."""
        seen = node.labels if labels is None else labels
        for key, value in self.node_selector.items():
            if seen.get(key) != value:
                return NodeRule.NODE_SELECTOR, f"{key}={value}"
        if not self.affinity.allows_node(node):
            return NodeRule.NODE_AFFINITY, ""
        for taint in node.blocking_taints():
            if not self.tolerates(taint):
                return NodeRule.TAINT, f"{taint.key}={taint.value}:{taint.effect}"
        return None


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    time_s: float  # "now" (epoch seconds) for cooldowns and budgets
    kubevirt: KubevirtMigrationConfig
    namespaces: tuple[Namespace, ...]
    nodes: tuple[Node, ...]
    vmis: tuple[Vmi, ...]
    usage_time_s: float = 0.0  # the time (seconds since the profiles' origin) usage values were evaluated at
    launcher: LauncherSizing = LauncherSizing()  # how KubeVirt sizes virt-launcher pods (requests)
    _node_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_node_index", {n.name: i for i, n in enumerate(self.nodes)})

    def node(self, name: str) -> Node:
        return self.nodes[self._node_index[name]]

    def has_node(self, name: str) -> bool:
        return name in self._node_index

    def namespace_labels(self, name: str) -> Labels:
        for ns in self.namespaces:
            if ns.name == name:
                return ns.labels
        return _EMPTY

    def vmis_on(self, node: str) -> Iterator[Vmi]:
        return (v for v in self.vmis if v.node == node)

    def node_cpu_used_cores(self, node: str) -> float:
        """Measured node CPU usage if the snapshot gives it, else the sum of its VMIs' CPU demand."""
        measured = self.node(node).cpu_used_cores
        return measured if measured is not None else sum(v.cpu_cores for v in self.vmis_on(node))

    def node_memory_used_bytes(self, node: str) -> float:
        measured = self.node(node).memory_used_bytes
        return measured if measured is not None else sum(v.memory_used_bytes for v in self.vmis_on(node))

    def at(self, t_s: float) -> ClusterSnapshot:
        """The cluster `t_s` seconds after the profiles' origin: usage re-evaluated, `time_s` shifted alike."""
        origin = self.time_s - self.usage_time_s
        nodes = tuple(_node_at(n, t_s) for n in self.nodes)
        vmis = tuple(_vmi_at(v, t_s) for v in self.vmis)
        return replace(self, time_s=origin + t_s, usage_time_s=t_s, nodes=nodes, vmis=vmis)


def _node_at(node: Node, t_s: float) -> Node:
    if node.usage is None:
        return node
    cpu = node.usage.cpu.value_at(t_s) if node.usage.cpu is not None else None
    memory = node.usage.memory.value_at(t_s) if node.usage.memory is not None else None
    return replace(node, cpu_used_cores=cpu, memory_used_bytes=memory)


def _vmi_at(vmi: Vmi, t_s: float) -> Vmi:
    u = vmi.usage
    return replace(
        vmi,
        cpu_cores=u.cpu.value_at(t_s),
        memory_used_bytes=u.memory.value_at(t_s),
        dirty_rate_bps=u.dirty_rate.value_at(t_s),
    )


# --------------------------------------------------------------------------------------------------------- parsing


__all__ = [
    "API_VERSION",
    "HOSTNAME_LABEL",
    "Affinity",
    "ClusterSnapshot",
    "EvictionStrategy",
    "KubevirtMigrationConfig",
    "LabelRequirement",
    "LabelSelector",
    "LauncherSizing",
    "Namespace",
    "Node",
    "NodePressure",
    "NodeRule",
    "NodeSelectorTerm",
    "NodeUsage",
    "PodAffinityTerm",
    "Taint",
    "TaintEffect",
    "Toleration",
    "Vmi",
    "VmiUsage",
]
