"""From the cluster as the API server and Prometheus describe it to the `ClusterSnapshot` the planners read.

The operator (from its watch-fed indexes) and `livemig plan --kubeconfig` (from one LIST) hand the same plain
dicts to `build_snapshot`; it writes them as a snapshot document and parses that with `parse_snapshot`, so a live
cluster and a snapshot file mean the same thing field by field (docs/snapshot.md).  An object the parser rejects
(garbage in a VMI or a Node) is left out and reported, never a crash.  Pure: no I/O, `now_s` is given.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from livemig.core.cluster import ClusterSnapshot
from livemig.core.errors import SpecError, SpecErrors
from livemig.core.kubevirt import KubevirtMigrationConfig, parse_migration_configuration
from livemig.core.snapshot_parser import parse_snapshot
from livemig.core.units import parse_bitrate, parse_quantity

BANDWIDTH_ANNOTATION = "livemig.io/migration-bandwidth"
#: On a VMI: the migrations livemig carried out, as JSON `[{"m": vmim, "t": end epoch s, "from": n, "to": n}]`.
HISTORY_ANNOTATION = "livemig.io/migrations"
#: At most this many entries are kept in the history annotation (the newest).
HISTORY_KEEP = 32
FINAL_PHASES = frozenset({"Succeeded", "Failed"})
#: Recent successful migrations per source node used to measure its transfer rate.
MEASURED_MIGRATIONS = 5
#: Only migrations at least this long are measured: KubeVirt's timestamps have whole seconds.
MIN_MEASURED_S = 10.0


@dataclass(frozen=True, slots=True)
class NodeMetrics:
    """Prometheus values for one node; None = unavailable."""

    cpu_utilization: float | None = None
    memory_utilization: float | None = None
    cpu_pressure: float | None = None
    memory_pressure: float | None = None
    io_pressure: float | None = None


@dataclass(frozen=True, slots=True)
class VmiMetrics:
    """Prometheus values for one VMI; None = unavailable."""

    cpu_cores: float | None = None
    memory_bytes: float | None = None
    dirty_rate_bps: float | None = None


@dataclass(frozen=True, slots=True)
class ClusterObjects:
    """The objects a cycle reads, as plain dicts (what the API server returns)."""

    nodes: Sequence[Mapping[str, Any]] = ()
    namespaces: Sequence[Mapping[str, Any]] = ()
    vmis: Sequence[Mapping[str, Any]] = ()
    vmims: Sequence[Mapping[str, Any]] = ()
    kubevirt: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What to assume where the cluster says nothing."""

    default_bandwidth_bps: float = 10e9 / 8
    #: Without a dirty-rate sample: this fraction of the node's migration bandwidth (docs/operator.md, "degraded").
    unknown_dirty_rate_fraction: float = 0.25


@dataclass(frozen=True, slots=True)
class Inventory:
    """A snapshot plus what building it found."""

    snapshot: ClusterSnapshot
    busy: frozenset[str] = frozenset()  # VMIs ns/name that must not be moved now (migrating, evacuating, ...)
    immovable: frozenset[str] = frozenset()  # VMIs that cannot live-migrate (LiveMigratable not True)
    skipped: tuple[str, ...] = ()  # objects left out, with the reason
    bandwidth_source: Mapping[str, str] = field(default_factory=dict)  # node -> annotation | measured | default
    missing_dirty_rates: frozenset[str] = frozenset()


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def _section(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def key_of(obj: Mapping[str, Any]) -> str:
    m = meta(obj)
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp as epoch seconds, None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def vmim_is_final(vmim: Mapping[str, Any]) -> bool:
    """KubeVirt's IsFinal(): the phase; a VMIM being deleted before any phase counts as final too."""
    status = _section(vmim, "status")
    return status.get("phase") in FINAL_PHASES


def unfinished_vmims(vmims: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """VMI ns/name -> its unfinished VMIM (KubeVirt allows one at a time)."""
    out: dict[str, Mapping[str, Any]] = {}
    for vmim in vmims:
        if vmim_is_final(vmim):
            continue
        vmi = _section(vmim, "spec").get("vmiName")
        if isinstance(vmi, str):
            out[f"{meta(vmim).get('namespace', '')}/{vmi}"] = vmim
    return out


def read_history(vmi: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The history annotation; unreadable entries are dropped."""
    raw = (meta(vmi).get("annotations") or {}).get(HISTORY_ANNOTATION)
    if not isinstance(raw, str):
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("m"), str) and _finite(item.get("t")):
            out.append(item)
    return out


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def measured_bandwidth(vmims: Iterable[Mapping[str, Any]], sent_of: Mapping[str, float]) -> dict[str, float]:
    """Per source node, the mean transfer rate (bytes sent at least / duration) of its newest successful migrations.

    `sent_of` is what each VMI's migration must have put on the link: its non-zero memory, the memory it uses
    (a never-written page crosses as a 9-byte marker, so guest memory over duration overstated a lightly used
    guest's rate, up to many times the link's).  A lower bound of the link's rate (re-sent dirty pages are not
    counted either), so a conservative estimate; migrations shorter than MIN_MEASURED_S are left out (whole-second
    timestamps would make their rate up to 2x off), and each duration counts one second more than its timestamps
    show, so truncation cannot push the rate over the link's."""
    samples: dict[str, list[tuple[float, float]]] = {}
    for vmim in vmims:
        status = _section(vmim, "status")
        if status.get("phase") != "Succeeded":
            continue
        state = _section(status, "migrationState")
        start, end = parse_time(state.get("startTimestamp")), parse_time(state.get("endTimestamp"))
        source = state.get("sourceNode")
        vmi = f"{meta(vmim).get('namespace', '')}/{_section(vmim, 'spec').get('vmiName', '')}"
        memory = sent_of.get(vmi)
        if start is None or end is None or end - start < MIN_MEASURED_S or not isinstance(source, str) or not memory:
            continue
        # Whole-second timestamps: the true duration is under (end - start) + 1 s; dividing by that keeps the rate
        # a lower bound of the link's (one migration measured at 13 s instead of 13.7 s read 7 % over its link).
        samples.setdefault(source, []).append((end, memory / (end - start + 1.0)))
    out: dict[str, float] = {}
    for node, values in samples.items():
        newest = sorted(values)[-MEASURED_MIGRATIONS:]
        out[node] = sum(rate for _, rate in newest) / len(newest)
    return out


def _vcpus(spec: Mapping[str, Any]) -> int:
    cpu = _section(_section(spec, "domain"), "cpu")
    count = 1
    for key in ("sockets", "cores", "threads"):
        value = cpu.get(key, 1)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            count *= value
    return count


def _guest_memory(spec: Mapping[str, Any]) -> object:
    domain = _section(spec, "domain")
    guest = _section(domain, "memory").get("guest")
    if guest is not None:
        return guest
    return _section(_section(domain, "resources"), "requests").get("memory")


def _condition(obj: Mapping[str, Any], kind: str) -> str | None:
    for condition in _section(obj, "status").get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            status = condition.get("status")
            return status if isinstance(status, str) else None
    return None


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = meta(obj).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


_ITEM = re.compile(r"^(nodes|vmis)\[(\d+)\]")


def build_snapshot(
    objects: ClusterObjects,
    now_s: float,
    node_metrics: Mapping[str, NodeMetrics] | None = None,
    vmi_metrics: Mapping[str, VmiMetrics] | None = None,
    assumptions: Assumptions = Assumptions(),
) -> Inventory:
    """The snapshot the planners read, at `now_s` (epoch seconds).

    - Nodes: allocatable CPU and memory, labels, taints, cordon, Ready condition (healthy), migration bandwidth from
      the `livemig.io/migration-bandwidth` annotation, else measured on the node's recent migrations, else the
      assumption; measured utilisation and PSI when given.
    - VMIs: only Running ones with a node; guest memory and vCPUs from the spec; usage and dirty rate from the metrics
      (defaults: vCPUs, guest memory, and `unknown_dirty_rate_fraction` of the bandwidth); the history annotation for
      cooldowns and budgets.  A VMI that is migrating (an unfinished VMIM), marked for evacuation
      (`status.evacuationNodeName`), being deleted, or not LiveMigratable is in the snapshot but not movable (its
      load counts); a migrating VMI is placed on its target when the target is known.
    """
    node_metrics = node_metrics or {}
    vmi_metrics = vmi_metrics or {}
    skipped: list[str] = []
    in_flight = unfinished_vmims(objects.vmims)
    # What each VMI's migration sent at least: its used (non-zero) memory, as the model counts it
    # (livemig.core.guest).  Without a memory sample that is unknown, and its migrations are not measured.
    sent_of: dict[str, float] = {}
    for vmi in objects.vmis:
        used = vmi_metrics.get(key_of(vmi), VmiMetrics()).memory_bytes
        if used is None or not math.isfinite(used) or used <= 0:
            continue
        with contextlib.suppress(SpecError, TypeError):
            guest = parse_quantity(_guest_memory(_section(vmi, "spec")), "memory")  # type: ignore[arg-type]
            sent_of[key_of(vmi)] = min(guest, used)
    measured = measured_bandwidth(objects.vmims, sent_of)

    nodes_doc: list[dict[str, Any]] = []
    bandwidth_source: dict[str, str] = {}
    link_of: dict[str, float] = {}
    for node in objects.nodes:
        m = meta(node)
        name = m.get("name")
        if not isinstance(name, str) or not name:
            skipped.append("a Node without a name")
            continue
        status, spec = _section(node, "status"), _section(node, "spec")
        allocatable = _section(status, "allocatable") or _section(status, "capacity")
        annotation = (m.get("annotations") or {}).get(BANDWIDTH_ANNOTATION)
        bandwidth: float | None = None
        if annotation is not None:
            try:
                bandwidth = parse_bitrate(annotation, f"node {name}: annotation {BANDWIDTH_ANNOTATION}")
                bandwidth_source[name] = "annotation"
            except SpecError as exc:
                skipped.append(f"{exc} (using the next source)")
        if bandwidth is None and name in measured:
            bandwidth, bandwidth_source[name] = measured[name], "measured"
        if bandwidth is None:
            bandwidth, bandwidth_source[name] = assumptions.default_bandwidth_bps, "default"
        link_of[name] = bandwidth
        doc: dict[str, Any] = {
            "name": name,
            "cpu": allocatable.get("cpu"),
            "memory": allocatable.get("memory"),
            "labels": _labels(node),
            "taints": [
                {k: t[k] for k in ("key", "value", "effect") if t.get(k) is not None}
                for t in spec.get("taints") or ()
                if isinstance(t, Mapping)
            ],
            "schedulable": not bool(spec.get("unschedulable")),
            "healthy": _condition(node, "Ready") == "True",
            "linkBandwidth": bandwidth,
        }
        metrics = node_metrics.get(name)
        if metrics is not None:
            pressure = {
                k: v
                for k, v in (
                    ("cpu", metrics.cpu_pressure),
                    ("memory", metrics.memory_pressure),
                    ("io", metrics.io_pressure),
                )
                if v is not None
            }
            if pressure:
                doc["pressure"] = {k: min(1.0, v) for k, v in pressure.items()}
            usage: dict[str, Any] = {}
            if metrics.cpu_utilization is not None and doc["cpu"] is not None:
                usage["cpu"] = metrics.cpu_utilization * _number(doc["cpu"], cpu=True)
            if metrics.memory_utilization is not None and doc["memory"] is not None:
                usage["memory"] = metrics.memory_utilization * _number(doc["memory"])
            if usage:
                doc["usage"] = usage
        nodes_doc.append(doc)

    namespaces_doc = [
        {"name": meta(ns)["name"], "labels": _labels(ns)}
        for ns in objects.namespaces
        if isinstance(meta(ns).get("name"), str)
    ]
    node_names = {d["name"] for d in nodes_doc}
    kubevirt_spec = _section(_section(objects.kubevirt or {}, "spec"), "configuration")
    cluster_strategy = kubevirt_spec.get("evictionStrategy", "None")

    vmis_doc: list[dict[str, Any]] = []
    busy: set[str] = set()
    immovable: set[str] = set()
    missing_dirty: set[str] = set()
    for vmi in objects.vmis:
        key = key_of(vmi)
        m, spec, status = meta(vmi), _section(vmi, "spec"), _section(vmi, "status")
        if status.get("phase") != "Running" or not isinstance(status.get("nodeName"), str):
            continue  # not placed: no load on a node, nothing to move
        placed = str(status["nodeName"])
        flight = in_flight.get(key)
        if flight is not None:
            target = _section(_section(flight, "status"), "migrationState").get("targetNode") or (
                _section(flight, "spec").get("addedNodeSelector") or {}
            ).get("kubernetes.io/hostname")
            if isinstance(target, str) and target in node_names:
                placed = target
        if placed not in node_names:
            skipped.append(f"VMI {key}: on node {placed!r}, which is not in the inventory")
            continue
        if _condition(vmi, "LiveMigratable") != "True":
            immovable.add(key)
        if flight is not None or status.get("evacuationNodeName") or m.get("deletionTimestamp"):
            busy.add(key)
        memory = _guest_memory(spec)
        vmi_values = vmi_metrics.get(key, VmiMetrics())
        dirty = vmi_values.dirty_rate_bps
        if dirty is None:
            missing_dirty.add(key)
            dirty = assumptions.unknown_dirty_rate_fraction * link_of.get(placed, assumptions.default_bandwidth_bps)
        vcpus = _vcpus(spec)
        vmi_usage: dict[str, Any] = {"dirtyRate": dirty}
        vmi_usage["cpu"] = vmi_values.cpu_cores if vmi_values.cpu_cores is not None else vcpus
        if vmi_values.memory_bytes is not None:
            vmi_usage["memory"] = vmi_values.memory_bytes
        doc = {
            "namespace": m.get("namespace"),
            "name": m.get("name"),
            "labels": _labels(vmi),
            "node": placed,
            "vcpus": vcpus,
            "memory": memory,
            "usage": vmi_usage,
            "evictionStrategy": spec.get("evictionStrategy", cluster_strategy),
            "liveMigratable": key not in busy and key not in immovable,
            "migrations": [entry["t"] for entry in read_history(vmi)],
        }
        for k in ("nodeSelector", "affinity", "tolerations"):
            if spec.get(k):
                doc[k] = spec[k]
        resources = _section(_section(spec, "domain"), "resources")
        requests = {k: v for k, v in _section(resources, "requests").items() if k in ("cpu", "memory")}
        if requests:
            doc["requests"] = requests
        if resources.get("overcommitGuestOverhead") is True:
            doc["overcommitGuestOverhead"] = True
        vmis_doc.append(doc)

    document: dict[str, Any] = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "time": now_s,
        "kubevirt": _section(kubevirt_spec, "migrations"),
        "launcher": _launcher_sizing(kubevirt_spec, skipped),
        "namespaces": namespaces_doc,
        "nodes": nodes_doc,
        "vmis": vmis_doc,
    }
    snapshot = _parse_dropping_bad(document, skipped)
    return Inventory(
        snapshot=snapshot,
        busy=frozenset(busy),
        immovable=frozenset(immovable),
        skipped=tuple(skipped),
        bandwidth_source=bandwidth_source,
        missing_dirty_rates=frozenset(missing_dirty),
    )


def _number(value: object, *, cpu: bool = False) -> float:
    text = str(value)
    if cpu and text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return parse_quantity(text, "value")


def _launcher_sizing(configuration: Mapping[str, Any], skipped: list[str]) -> dict[str, Any]:
    """The KubeVirt CR's settings that size virt-launcher pods, as a snapshot's `kubevirt:` keys (bad ones dropped
    with a note: KubeVirt's default is used instead)."""
    developer = _section(configuration, "developerConfiguration")
    doc = {
        key: value
        for key, value in (
            ("memoryOvercommit", developer.get("memoryOvercommit")),
            ("cpuAllocationRatio", developer.get("cpuAllocationRatio")),
            ("additionalGuestMemoryOverheadRatio", configuration.get("additionalGuestMemoryOverheadRatio")),
        )
        if value is not None
    }
    probe = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "nodes": [{"name": "n", "cpu": 1, "memory": 1}],
    }
    try:
        parse_snapshot({**probe, "kubevirt": doc})
    except SpecErrors as exc:
        for error in exc.errors:
            key = error.path.removeprefix("kubevirt.")
            if key in doc:
                skipped.append(f"KubeVirt CR: {error} (using KubeVirt's default)")
                del doc[key]
    return doc


def _parse_dropping_bad(document: dict[str, Any], skipped: list[str]) -> ClusterSnapshot:
    """Parse; drop the nodes and VMIs the parser names, then parse again (the rest must then be clean)."""
    kubevirt_manifest = document.pop("kubevirt")
    document["kubevirt"] = document.pop("launcher", {})  # the sizing keys only; the migrations are read below
    try:
        kubevirt = parse_migration_configuration(
            kubevirt_manifest, "KubeVirt CR spec.configuration.migrations", manifest=True
        )
    except SpecErrors as exc:
        skipped.extend(f"{e} (using KubeVirt's defaults)" for e in exc.errors)
        kubevirt = KubevirtMigrationConfig()
    for _ in range(3):
        try:
            return replace(parse_snapshot(document), kubevirt=kubevirt)
        except SpecErrors as exc:
            bad: dict[str, set[int]] = {"nodes": set(), "vmis": set()}
            for error in exc.errors:
                match = _ITEM.match(error.path)
                if not match:
                    raise
                index = int(match.group(2))
                bad[match.group(1)].add(index)
                item = document[match.group(1)][index]
                where = f"{item['namespace']}/{item['name']}" if "namespace" in item else str(item.get("name"))
                skipped.append(f"{match.group(1)[:-1]} {where} left out: {error}")
            dropped_nodes = {document["nodes"][i]["name"] for i in bad["nodes"]}
            document["nodes"] = [n for i, n in enumerate(document["nodes"]) if i not in bad["nodes"]]
            document["vmis"] = [
                v for i, v in enumerate(document["vmis"]) if i not in bad["vmis"] and v["node"] not in dropped_nodes
            ]
    return replace(parse_snapshot(document), kubevirt=kubevirt)
