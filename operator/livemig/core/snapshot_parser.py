"""A cluster snapshot document (YAML/JSON) read into a `ClusterSnapshot`.

`parse_snapshot` collects every problem as a `SpecError` with a dotted path (`vmis[3].usage.dirtyRate: ...`) before
raising `SpecErrors`.  `load_snapshot` is the only I/O here.  The schema is documented field by field in
docs/snapshot.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import yaml

from livemig.core.cluster import (
    _EMPTY,
    API_VERSION,
    DEFAULT_LINK_BANDWIDTH_BPS,
    KINDS,
    MAX_VMI_MEMORY_BYTES,
    MAX_VMI_VCPUS,
    SCENARIO_KEYS,
    Affinity,
    ClusterSnapshot,
    EvictionStrategy,
    Labels,
    LauncherSizing,
    Namespace,
    Node,
    NodePressure,
    NodeSelectorTerm,
    NodeUsage,
    PodAffinityTerm,
    Taint,
    TaintEffect,
    Toleration,
    Vmi,
    VmiUsage,
)
from livemig.core.errors import SpecError, SpecErrors, join_path, value_kind
from livemig.core.kubevirt import KubevirtMigrationConfig, read_migration_configuration
from livemig.core.profiles import Constant, parse_profile
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, NodeSelectorOperator, SelectorOperator
from livemig.core.units import parse_bitrate, parse_bytes, parse_quantity

_E = TypeVar("_E", bound=StrEnum)


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
