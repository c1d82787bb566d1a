"""The cluster snapshot: nodes, VMIs and KubeVirt's migration settings, as frozen value objects.

A snapshot is what every planner reads and what the simulator's scenario files start from (a scenario is a valid
snapshot).  `parse_snapshot` turns a YAML/JSON document into a `ClusterSnapshot`, collecting every problem as a
`SpecError` with a dotted path (`vmis[3].usage.dirtyRate: ...`) before raising `SpecErrors`.  `load_snapshot` is the
only I/O here.  The schema is documented field by field in docs/snapshot.md.

Units: memory in bytes (`memory_bytes`), CPU in cores (`cpu_cores`), rates in bytes per second (`*_bps`), times in
seconds (`*_s`; absolute times are seconds since the Unix epoch).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import yaml

from livemig.core.errors import SpecError, SpecErrors, join_path, value_kind
from livemig.core.kubevirt import KubevirtMigrationConfig, read_migration_configuration
from livemig.core.profiles import AnyProfile, Constant, parse_profile
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, NodeSelectorOperator, SelectorOperator
from livemig.core.units import parse_bitrate, parse_bytes, parse_quantity

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

_E = TypeVar("_E", bound=StrEnum)
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


def load_snapshot(path: str | Path) -> ClusterSnapshot:
    """Read a YAML or JSON snapshot (or scenario) file.  The only I/O in this module."""
    return parse_snapshot(read_document(path))


def read_document(path: str | Path) -> Mapping[str, object]:
    """Read one YAML/JSON mapping from a file; problems become SpecError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(p), f"cannot read file: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SpecError(str(p), f"not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(doc, Mapping):
        raise SpecError(str(p), "must hold one mapping (apiVersion, kind, nodes, vmis, ...)")
    return doc


_TOP_KEYS = ("apiVersion", "kind", "metadata", "description", "time", "kubevirt", "namespaces", "nodes", "vmis")
_NODE_KEYS = (
    "name", "cpu", "memory", "labels", "taints", "schedulable", "healthy", "linkBandwidth", "pressure", "usage",
    "otherRequests",
)  # fmt: skip
_VMI_KEYS = (
    "namespace", "name", "labels", "node", "vcpus", "memory", "usage", "workingSet", "nodeSelector", "affinity",
    "tolerations", "evictionStrategy", "liveMigratable", "migrations", "backend", "requests",
    "overcommitGuestOverhead",
)  # fmt: skip
#: Keys of a snapshot's `kubevirt:` section that size virt-launcher pods (`LauncherSizing`), not migrations.
LAUNCHER_KEYS = ("memoryOvercommit", "cpuAllocationRatio", "additionalGuestMemoryOverheadRatio")


class _Parser:
    """Collects every problem; each helper returns None (and records an error) on bad input."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []
        self.timestamps: list[float] = []

    def fail(self, path: str, problem: str) -> None:
        self.errors.append(SpecError(path, problem))

    # -- primitives

    def mapping(self, value: object, path: str, allowed: Sequence[str] | None = None) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, not {value_kind(value)}")
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(join_path(path, str(key)), f"unknown field (expected one of: {', '.join(allowed)})")
        return value

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.fail(path, f"must be a non-empty string, not {value!r}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {value!r}")
            return None
        return value

    def labels(self, value: object, path: str) -> Labels:
        if value is None:
            return _EMPTY
        m = self.mapping(value, path)
        if m is None:
            return _EMPTY
        out: dict[str, str] = {}
        for k, v in m.items():
            if not isinstance(v, str | int | float):
                self.fail(join_path(path, str(k)), f"must be a string, not {value_kind(v)}")
                continue
            out[str(k)] = _label_value(v)
        return MappingProxyType(out)

    def number(
        self, value: object, path: str, *, integer: bool = False, minimum: float = 0, maximum: float = math.inf
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
            self.fail(path, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
            return None
        if not math.isfinite(value) or value < minimum:
            self.fail(path, f"must be at least {minimum:g}, got {value!r}")
            return None
        if value > maximum:
            self.fail(path, f"must be at most {maximum:g}, got {value!r}")
            return None
        return float(value)

    def call(self, fn: object, value: object, path: str, **kwargs: object) -> float | None:
        try:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise SpecError(path, f"must be a quantity, not {value_kind(value)}")
            return fn(value, path, **kwargs)  # type: ignore[operator,no-any-return]
        except SpecError as exc:
            self.errors.append(exc)
            return None

    def timestamp(self, value: object, path: str) -> float | None:
        seconds = parse_timestamp(value, path, self.errors)
        if seconds is not None:
            self.timestamps.append(seconds)
        return seconds

    # -- sections

    def kubevirt(self, value: object, path: str) -> tuple[KubevirtMigrationConfig, LauncherSizing]:
        if not isinstance(value, Mapping):
            return read_migration_configuration(value, path, self.errors), LauncherSizing()
        migrations = {k: v for k, v in value.items() if k not in LAUNCHER_KEYS}
        config = read_migration_configuration(migrations, path, self.errors, also_known=LAUNCHER_KEYS)
        return config, self.launcher(value, path)

    def launcher(self, value: Mapping[str, object], path: str) -> LauncherSizing:
        kw: dict[str, float] = {}
        for key, attr, minimum in (
            ("memoryOvercommit", "memory_overcommit_percent", 10),
            ("cpuAllocationRatio", "cpu_allocation_ratio", 1),
        ):
            if value.get(key) is not None:
                n = self.number(value[key], f"{path}.{key}", integer=True, minimum=minimum)
                if n is not None:
                    kw[attr] = int(n)
        ratio = value.get("additionalGuestMemoryOverheadRatio")
        if ratio is not None:
            where = f"{path}.additionalGuestMemoryOverheadRatio"
            try:
                number = float(ratio) if isinstance(ratio, str | int | float) and not isinstance(ratio, bool) else None
            except ValueError:
                number = None
            if number is None or not math.isfinite(number) or number < 1.0:
                self.fail(where, f"must be a number of at least 1.0 (as a string in KubeVirt), not {ratio!r}")
            else:
                kw["additional_guest_memory_overhead_ratio"] = number
        return LauncherSizing(**kw)  # type: ignore[arg-type]

    def requests(self, value: object, path: str) -> tuple[float | None, float | None]:
        """`{cpu, memory}` requests (each optional)."""
        if value is None:
            return None, None
        m = self.mapping(value, path, ("cpu", "memory"))
        if m is None:
            return None, None
        cpu = self.call(parse_cpu, m["cpu"], f"{path}.cpu") if m.get("cpu") is not None else None
        memory = self.call(parse_bytes, m["memory"], f"{path}.memory") if m.get("memory") is not None else None
        return cpu, memory

    def namespaces(self, value: object, path: str) -> tuple[Namespace, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {name, labels}")
            return ()
        out: list[Namespace] = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("name", "labels"))
            if m is None:
                continue
            name = self.string(m.get("name"), f"{p}.name")
            labels = self.labels(m.get("labels"), f"{p}.labels")
            if name is not None:
                if name in seen:
                    self.fail(f"{p}.name", f"duplicate namespace {name!r}")
                seen.add(name)
                out.append(Namespace(name, labels))
        return tuple(out)

    def node(self, value: object, path: str) -> Node | None:
        m = self.mapping(value, path, _NODE_KEYS)
        if m is None:
            return None
        before = len(self.errors)
        name = self.string(m.get("name"), f"{path}.name")
        cpu = self.call(parse_cpu, m.get("cpu"), f"{path}.cpu") if "cpu" in m else self._missing(f"{path}.cpu")
        memory = (
            self.call(parse_bytes, m.get("memory"), f"{path}.memory", allow_zero=False)
            if "memory" in m
            else self._missing(f"{path}.memory")
        )
        if cpu is not None and cpu <= 0:
            self.fail(f"{path}.cpu", "must be greater than zero")
        labels = self.labels(m.get("labels"), f"{path}.labels")
        taints = self.taints(m.get("taints"), f"{path}.taints")
        schedulable = self.boolean(m.get("schedulable", True), f"{path}.schedulable")
        healthy = self.boolean(m.get("healthy", True), f"{path}.healthy")
        link = DEFAULT_LINK_BANDWIDTH_BPS
        if m.get("linkBandwidth") is not None:
            link = self.call(parse_bitrate, m["linkBandwidth"], f"{path}.linkBandwidth") or link
        pressure = self.pressure(m.get("pressure"), f"{path}.pressure")
        usage: NodeUsage | None = None
        cpu_used: float | None = None
        memory_used: float | None = None
        if m.get("usage") is not None:
            um = self.mapping(m["usage"], f"{path}.usage", ("cpu", "memory"))
            if um is not None:
                cpu_p = parse_profile(um["cpu"], f"{path}.usage.cpu", parse_cpu, self.errors) if "cpu" in um else None
                mem_p = (
                    parse_profile(um["memory"], f"{path}.usage.memory", _memory, self.errors)
                    if "memory" in um
                    else None
                )
                usage = NodeUsage(cpu_p, mem_p)
                cpu_used = cpu_p.value_at(0.0) if cpu_p is not None else None
                memory_used = mem_p.value_at(0.0) if mem_p is not None else None
        other_cpu, other_memory = self.requests(m.get("otherRequests"), f"{path}.otherRequests")
        if len(self.errors) != before:
            return None
        assert name is not None
        assert cpu is not None
        assert memory is not None
        assert schedulable is not None
        assert healthy is not None
        return Node(
            name=name,
            cpu_cores=cpu,
            memory_bytes=memory,
            labels=labels,
            taints=taints,
            schedulable=schedulable,
            healthy=healthy,
            link_bandwidth_bps=link,
            pressure=pressure,
            usage=usage,
            cpu_used_cores=cpu_used,
            memory_used_bytes=memory_used,
            other_cpu_requests_cores=other_cpu or 0.0,
            other_memory_requests_bytes=other_memory or 0.0,
        )

    def _missing(self, path: str) -> float | None:
        self.fail(path, "is required")
        return None

    def taints(self, value: object, path: str) -> tuple[Taint, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, value, effect}")
            return ()
        out: list[Taint] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "value", "effect"))
            if m is None:
                continue
            key = self.string(m.get("key"), f"{p}.key")
            effect = self.enum(m.get("effect"), f"{p}.effect", TaintEffect)
            val = m.get("value", "")
            if key is not None and effect is not None:
                out.append(Taint(key, _label_value(val) if val is not None else "", effect))
        return tuple(out)

    def tolerations(self, value: object, path: str) -> tuple[Toleration, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, operator, value, effect}")
            return ()
        out: list[Toleration] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "operator", "value", "effect", "tolerationSeconds"))
            if m is None:
                continue
            operator = m.get("operator", "Equal")
            if operator not in ("Equal", "Exists"):
                self.fail(f"{p}.operator", f"must be Equal or Exists, not {operator!r}")
                continue
            key = m.get("key", "") or ""
            if not isinstance(key, str):
                self.fail(f"{p}.key", f"must be a string, not {value_kind(key)}")
                continue
            if operator == "Equal" and not key:
                self.fail(f"{p}.key", "is required with operator Equal")
                continue
            effect = self.enum(m["effect"], f"{p}.effect", TaintEffect) if m.get("effect") else None
            if m.get("effect") and effect is None:
                continue
            out.append(Toleration(key, str(operator), _label_value(m.get("value", "") or ""), effect))
        return tuple(out)

    def enum(self, value: object, path: str, enum: type[_E]) -> _E | None:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return enum(value)
        except ValueError:
            self.fail(path, f"must be one of {', '.join(e.value for e in enum)}, not {value!r}")
            return None

    def pressure(self, value: object, path: str) -> NodePressure:
        if value is None:
            return NodePressure()
        m = self.mapping(value, path, ("cpu", "memory", "io"))
        if m is None:
            return NodePressure()
        vals: dict[str, float] = {}
        for key in ("cpu", "memory", "io"):
            if m.get(key) is not None:
                n = self.number(m[key], f"{path}.{key}")
                if n is not None and n > 1:
                    self.fail(f"{path}.{key}", f"must be a fraction between 0 and 1, got {n:g}")
                elif n is not None:
                    vals[key] = n
        return NodePressure(**vals)

    def requirements(self, value: object, path: str, *, node: bool) -> tuple[LabelSelectorRequirement, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, operator, values}")
            return ()
        operators = NodeSelectorOperator if node else SelectorOperator  # Gt and Lt only in node selector terms
        ops = tuple(o.value for o in operators)
        out: list[LabelSelectorRequirement] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "operator", "values"))
            if m is None:
                continue
            key = self.string(m.get("key"), f"{p}.key")
            op = m.get("operator")
            if op not in ops:
                self.fail(f"{p}.operator", f"must be one of {', '.join(ops)}, not {op!r}")
                continue
            raw = m.get("values") or []
            if not isinstance(raw, list):
                self.fail(f"{p}.values", "must be a list of strings")
                continue
            values = tuple(_label_value(v) for v in raw)
            if op in ("In", "NotIn") and not values:
                self.fail(f"{p}.values", f"must not be empty with operator {op}")
                continue
            if op in ("Exists", "DoesNotExist") and values:
                self.fail(f"{p}.values", f"must be empty with operator {op}")
                continue
            if op in ("Gt", "Lt") and (len(values) != 1 or not re.fullmatch(r"-?\d+", values[0])):
                self.fail(f"{p}.values", f"must hold one integer with operator {op}")
                continue
            if key is not None:
                out.append(LabelSelectorRequirement(key, operators(op), values))
        return tuple(out)

    def label_selector(self, value: object, path: str) -> LabelSelector | None:
        m = self.mapping(value, path, ("matchLabels", "matchExpressions"))
        if m is None:
            return None
        before = len(self.errors)
        labels = self.labels(m.get("matchLabels"), f"{path}.matchLabels")
        exprs = self.requirements(m.get("matchExpressions"), f"{path}.matchExpressions", node=False)
        return LabelSelector(labels, exprs) if len(self.errors) == before else None

    def affinity(self, value: object, path: str) -> Affinity:
        if value is None:
            return Affinity()
        m = self.mapping(value, path, ("nodeAffinity", "podAntiAffinity"))
        if m is None:
            return Affinity()
        node_terms: list[NodeSelectorTerm] = []
        anti: list[PodAffinityTerm] = []
        req = "requiredDuringSchedulingIgnoredDuringExecution"
        pref = "preferredDuringSchedulingIgnoredDuringExecution"
        if m.get("nodeAffinity") is not None:
            p = f"{path}.nodeAffinity"
            na = self.mapping(m["nodeAffinity"], p, (req, pref))
            if na is not None and na.get(req) is not None:
                rq = self.mapping(na[req], f"{p}.{req}", ("nodeSelectorTerms",))
                terms = rq.get("nodeSelectorTerms") if rq is not None else None
                if rq is not None and (not isinstance(terms, list) or not terms):
                    self.fail(f"{p}.{req}.nodeSelectorTerms", "must be a non-empty list")
                elif isinstance(terms, list):
                    for i, term in enumerate(terms):
                        tp = f"{p}.{req}.nodeSelectorTerms[{i}]"
                        tm = self.mapping(term, tp, ("matchExpressions", "matchFields"))
                        if tm is None:
                            continue
                        exprs = self.requirements(tm.get("matchExpressions"), f"{tp}.matchExpressions", node=True)
                        fields = self.requirements(tm.get("matchFields"), f"{tp}.matchFields", node=True)
                        for j, f in enumerate(fields):
                            if f.key != "metadata.name":
                                self.fail(f"{tp}.matchFields[{j}].key", "only metadata.name is supported")
                        node_terms.append(NodeSelectorTerm(exprs + fields))
        if m.get("podAntiAffinity") is not None:
            p = f"{path}.podAntiAffinity"
            pa = self.mapping(m["podAntiAffinity"], p, (req, pref))
            if pa is not None and pa.get(req) is not None:
                items = pa[req]
                if not isinstance(items, list):
                    self.fail(f"{p}.{req}", "must be a list of pod affinity terms")
                else:
                    for i, item in enumerate(items):
                        tp = f"{p}.{req}[{i}]"
                        tm = self.mapping(item, tp, ("labelSelector", "topologyKey", "namespaces"))
                        if tm is None:
                            continue
                        term_errors = len(self.errors)
                        sel = (
                            self.label_selector(tm["labelSelector"], f"{tp}.labelSelector")
                            if tm.get("labelSelector") is not None
                            else None  # selects nothing
                        )
                        topo = self.string(tm.get("topologyKey"), f"{tp}.topologyKey")
                        nss = tm.get("namespaces")
                        namespaces: tuple[str, ...] | None = None
                        if nss is not None:
                            if not isinstance(nss, list) or not all(isinstance(x, str) for x in nss):
                                self.fail(f"{tp}.namespaces", "must be a list of namespace names")
                            else:
                                namespaces = tuple(nss) or None
                        if len(self.errors) == term_errors and topo is not None:
                            anti.append(PodAffinityTerm(sel, topo, namespaces))
        return Affinity(tuple(node_terms), tuple(anti))

    def vmi(self, value: object, path: str, nodes: Mapping[str, Node]) -> Vmi | None:
        m = self.mapping(value, path, _VMI_KEYS)
        if m is None:
            return None
        before = len(self.errors)
        namespace = self.string(m.get("namespace", "default"), f"{path}.namespace")
        name = self.string(m.get("name"), f"{path}.name")
        node = self.string(m.get("node"), f"{path}.node")
        if node is not None and nodes and node not in nodes:
            self.fail(f"{path}.node", f"names no node in nodes: {node!r}")
        vcpus = (
            self.number(m.get("vcpus"), f"{path}.vcpus", integer=True, minimum=1, maximum=MAX_VMI_VCPUS)
            if "vcpus" in m
            else None
        )
        if "vcpus" not in m:
            self._missing(f"{path}.vcpus")
        memory = (
            self.call(parse_bytes, m.get("memory"), f"{path}.memory", allow_zero=False)
            if "memory" in m
            else self._missing(f"{path}.memory")
        )
        if memory is not None and memory > MAX_VMI_MEMORY_BYTES:
            self.fail(f"{path}.memory", f"must be at most 1Pi, got {m.get('memory')!r}")
            memory = None
        labels = self.labels(m.get("labels"), f"{path}.labels")
        usage = self.vmi_usage(m.get("usage"), f"{path}.usage", vcpus, memory)
        working_set = (
            self.call(parse_bytes, m["workingSet"], f"{path}.workingSet") if m.get("workingSet") is not None else None
        )
        if working_set is not None and memory is not None and working_set > memory:
            self.fail(f"{path}.workingSet", "must not exceed memory")
        node_selector = self.labels(m.get("nodeSelector"), f"{path}.nodeSelector")
        affinity = self.affinity(m.get("affinity"), f"{path}.affinity")
        tolerations = self.tolerations(m.get("tolerations"), f"{path}.tolerations")
        strategy = (
            self.enum(m["evictionStrategy"], f"{path}.evictionStrategy", EvictionStrategy)
            if m.get("evictionStrategy") is not None
            else EvictionStrategy.LIVE_MIGRATE
        )
        migratable = self.boolean(m.get("liveMigratable", True), f"{path}.liveMigratable")
        migrations: list[float] = []
        raw = m.get("migrations")
        if raw is not None:
            if not isinstance(raw, list):
                self.fail(f"{path}.migrations", "must be a list of timestamps")
            else:
                for i, t in enumerate(raw):
                    s = self.timestamp(t, f"{path}.migrations[{i}]")
                    if s is not None:
                        migrations.append(s)
        backend = m.get("backend")
        if backend is not None and backend not in ("sim", "qemu"):
            self.fail(f"{path}.backend", f"must be sim or qemu, not {backend!r}")
        cpu_request, memory_request = self.requests(m.get("requests"), f"{path}.requests")
        overcommit_overhead = self.boolean(m.get("overcommitGuestOverhead", False), f"{path}.overcommitGuestOverhead")
        if len(self.errors) != before:
            return None
        assert namespace is not None
        assert name is not None
        assert node is not None
        assert vcpus is not None
        assert memory is not None
        assert usage is not None
        assert strategy is not None
        assert migratable is not None
        return Vmi(
            namespace=namespace,
            name=name,
            node=node,
            vcpus=int(vcpus),
            memory_bytes=memory,
            usage=usage,
            cpu_cores=usage.cpu.value_at(0.0),
            memory_used_bytes=usage.memory.value_at(0.0),
            dirty_rate_bps=usage.dirty_rate.value_at(0.0),
            labels=labels,
            working_set_bytes=working_set,
            node_selector=node_selector,
            affinity=affinity,
            tolerations=tolerations,
            eviction_strategy=strategy,
            live_migratable=migratable,
            migrations_s=tuple(sorted(migrations)),
            backend=str(backend) if backend is not None else None,
            cpu_request_cores=cpu_request,
            memory_request_bytes=memory_request,
            overcommit_guest_overhead=bool(overcommit_overhead),
        )

    def vmi_usage(self, value: object, path: str, vcpus: float | None, memory: float | None) -> VmiUsage | None:
        m: Mapping[str, object] = {}
        if value is not None:
            got = self.mapping(value, path, ("cpu", "memory", "dirtyRate"))
            if got is None:
                return None
            m = got
        before = len(self.errors)
        cpu = (
            parse_profile(m["cpu"], f"{path}.cpu", parse_cpu, self.errors)
            if "cpu" in m
            else Constant(float(vcpus or 0))
        )
        mem = (
            parse_profile(m["memory"], f"{path}.memory", _memory, self.errors)
            if "memory" in m
            else Constant(float(memory or 0))
        )
        dirty = (
            parse_profile(m["dirtyRate"], f"{path}.dirtyRate", _rate, self.errors)
            if "dirtyRate" in m
            else Constant(0.0)
        )
        if len(self.errors) != before or cpu is None or mem is None or dirty is None:
            return None
        return VmiUsage(cpu, mem, dirty)


def parse_snapshot(doc: Mapping[str, object]) -> ClusterSnapshot:
    """Validate a snapshot (or scenario) document; raise SpecErrors listing every problem with its dotted path."""
    p = _Parser()
    if not isinstance(doc, Mapping):
        raise SpecErrors([SpecError("(document)", f"must be an object, not {value_kind(doc)}")])
    for key in doc:
        if key not in _TOP_KEYS and key not in SCENARIO_KEYS:
            p.fail(str(key), f"unknown field (expected one of: {', '.join((*_TOP_KEYS, *sorted(SCENARIO_KEYS)))})")
    api = doc.get("apiVersion")
    if api != API_VERSION:
        p.fail("apiVersion", f"must be {API_VERSION}, not {api!r}")
    kind = doc.get("kind")
    if kind not in KINDS:
        p.fail("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    kubevirt, launcher = p.kubevirt(doc.get("kubevirt"), "kubevirt")
    namespaces = p.namespaces(doc.get("namespaces"), "namespaces")

    nodes: list[Node] = []
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        p.fail("nodes", "must be a non-empty list of nodes")
        raw_nodes = []
    node_names_declared: set[str] = set()
    for i, item in enumerate(raw_nodes):
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            if item["name"] in node_names_declared:
                p.fail(f"nodes[{i}].name", f"duplicate node {item['name']!r}")
            node_names_declared.add(str(item["name"]))
        node = p.node(item, f"nodes[{i}]")
        if node is not None:
            nodes.append(node)

    vmis: list[Vmi] = []
    raw_vmis = doc.get("vmis", [])
    if raw_vmis is None:
        raw_vmis = []
    if not isinstance(raw_vmis, list):
        p.fail("vmis", "must be a list of VMIs")
        raw_vmis = []
    keys: set[str] = set()
    node_map = {n: Node(n, 1, 1) for n in node_names_declared}
    for i, item in enumerate(raw_vmis):
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            key = f"{item.get('namespace', 'default')}/{item['name']}"
            if key in keys:
                p.fail(f"vmis[{i}].name", f"duplicate VMI {key!r}")
            keys.add(key)
        vmi = p.vmi(item, f"vmis[{i}]", node_map)
        if vmi is not None:
            vmis.append(vmi)

    time_s: float = 0.0
    if doc.get("time") is not None:
        t = parse_timestamp(doc["time"], "time", p.errors)
        time_s = t if t is not None else 0.0
    elif p.timestamps:
        time_s = max(p.timestamps)
    if p.errors:
        raise SpecErrors(p.errors)
    return ClusterSnapshot(time_s, kubevirt, namespaces, tuple(nodes), tuple(vmis), launcher=launcher)


# ------------------------------------------------------------------------------------------------------- helpers


def parse_cpu(value: object, field: str) -> float:
    """CPU cores: `4`, `2.5`, `"32"`, `"2500m"` (millicores)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value_kind(value)}")
    if isinstance(value, str) and value.strip().endswith("m"):
        text = value.strip()[:-1]
        try:
            cores = float(text) / 1000.0
        except ValueError:
            raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value!r}") from None
    else:
        try:
            cores = parse_quantity(value, field)
        except SpecError:
            raise SpecError(field, f"must be a CPU quantity like 2.5 or 2500m, not {value!r}") from None
    if not math.isfinite(cores) or cores < 0:
        raise SpecError(field, f"must be a non-negative CPU quantity, not {value!r}")
    return cores


def _memory(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a quantity like 6Gi, not {value_kind(value)}")
    try:
        return float(parse_bytes(value, field))
    except SpecError:
        raise SpecError(field, f"must be a non-negative quantity like 6Gi, not {value!r}") from None


def _rate(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(field, f"must be a quantity like 100Mi, not {value_kind(value)}")
    try:
        return parse_bitrate(value, field, allow_zero=True)
    except SpecError:
        raise SpecError(
            field, f"must be a quantity like 100Mi (bytes/s) or a bit rate like 1Gbit, not {value!r}"
        ) from None


def parse_timestamp(value: object, field: str, errors: list[SpecError]) -> float | None:
    """RFC 3339 (`2026-11-27T12:00:00Z`) or a number of seconds since the epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, datetime):  # YAML parses unquoted timestamps
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    errors.append(SpecError(field, f"must be an RFC 3339 time like 2026-11-27T12:00:00Z, not {value!r}"))
    return None


def _label_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
    "load_snapshot",
    "parse_cpu",
    "parse_snapshot",
    "parse_timestamp",
    "read_document",
]
