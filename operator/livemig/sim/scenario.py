"""A simulator scenario: a cluster snapshot (contracts §1, parsed by `livemig.core.snapshot_parser.parse_snapshot`)
plus the scenario-only keys `simulation`, `faults` and `kubevirtPolicies` (and, per VMI, `backend`).

```yaml
kubevirt:
  version: v1.8            # KubeVirt release mimicked where behaviour differs: v1.5 .. v1.8 (default v1.8)
  featureGates: [MigrationPriorityQueue]   # the CR's developerConfiguration.featureGates (default none)
simulation:
  timeScale: 60            # simulated seconds per wall second (CLI --time-scale overrides)
  seed: 1                  # jitter of the target-pod delays (CLI --seed overrides)
  step: 1s                 # physics step in simulated time
  kubevirtNamespace: kubevirt   # where the KubeVirt CR named `kubevirt` lives
  delays:                  # simulated durations of the steps no physics decides (± jitter)
    targetPodScheduled: 2s # Scheduling -> Scheduled (target pod Ready)
    targetReady: 1s        # PreparingTarget -> TargetReady
    migrationStart: 0.5s   # TargetReady -> Running
    jitter: 0.2            # each delay is multiplied by a seeded uniform factor in [1 - j, 1 + j]
  migrationCpu: {source: 1.0, target: 0.5}   # cores a running migration costs on each side
kubevirtPolicies:          # KubeVirt MigrationPolicy manifests created at start (migrations.kubevirt.io/v1alpha1)
  - metadata: {name: postcopy-db}
    spec: {selectors: {virtualMachineInstanceSelector: {app: db}}, allowPostCopy: true}
faults: [...]              # see livemig.sim.faults
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livemig.core.cluster import ClusterSnapshot
from livemig.core.errors import SpecError, SpecErrors
from livemig.core.kubevirt import (
    DEFAULT_KUBEVIRT_VERSION,
    MIGRATION_POLICY_GROUP,
    MIGRATION_POLICY_VERSION,
    KubevirtMigrationConfig,
    KubevirtVersion,
    KvMigrationPolicy,
    parse_kubevirt_version,
    parse_kv_migration_policy,
)
from livemig.core.snapshot_parser import parse_snapshot, read_document
from livemig.core.units import parse_duration
from livemig.sim.faults import Fault, parse_fault


@dataclass(frozen=True, slots=True)
class Delays:
    target_pod_scheduled_s: float = 2.0
    target_ready_s: float = 1.0
    migration_start_s: float = 0.5
    jitter: float = 0.2


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    time_scale: float = 1.0
    seed: int = 0
    step_s: float = 1.0
    kubevirt_namespace: str = "kubevirt"
    delays: Delays = field(default_factory=Delays)
    migration_cpu_source_cores: float = 1.0
    migration_cpu_target_cores: float = 0.5
    #: Write each node's link bandwidth as the annotation livemig.io/migration-bandwidth (false: leave the operator
    #: to measure it or use its default).
    bandwidth_annotation: bool = True


@dataclass(frozen=True, slots=True)
class Scenario:
    snapshot: ClusterSnapshot
    kubevirt: KubevirtMigrationConfig  # the snapshot's `kubevirt:` section (same object as snapshot.kubevirt)
    kubevirt_manifest: Mapping[str, Any]  # spec.configuration.migrations written to the KubeVirt CR
    policies: tuple[KvMigrationPolicy, ...]
    policy_manifests: tuple[Mapping[str, Any], ...]
    faults: tuple[Fault, ...]
    simulation: SimulationSettings
    # The scenario's own VMI entries (namespace/name -> mapping), for the Kubernetes-shaped fields the simulator
    # copies into the VMI objects verbatim (affinity, tolerations, nodeSelector).
    vmi_documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # `kubevirt.version`: the KubeVirt release mimicked where behaviour differs (default v1.8).
    kubevirt_version: KubevirtVersion = DEFAULT_KUBEVIRT_VERSION
    # `kubevirt.featureGates`: the KubeVirt CR's spec.configuration.developerConfiguration.featureGates.
    feature_gates: tuple[str, ...] = ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        names = {v.namespace for v in self.snapshot.vmis} | {n.name for n in self.snapshot.namespaces}
        return tuple(sorted(names))


_SIM_KEYS = {"timeScale", "seed", "step", "kubevirtNamespace", "delays", "migrationCpu", "bandwidthAnnotation"}
_DELAY_KEYS = {"targetPodScheduled", "targetReady", "migrationStart", "jitter"}


def _number(doc: Mapping[str, Any], key: str, path: str, errors: list[SpecError], *, positive: bool) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0):
        kind = "a positive number" if positive else "a non-negative number"
        errors.append(SpecError(f"{path}.{key}", f"must be {kind}, not {value!r}"))
        return None
    return float(value)


def _parse_simulation(doc: object, errors: list[SpecError]) -> SimulationSettings:
    path = "simulation"
    if doc is None:
        return SimulationSettings()
    if not isinstance(doc, Mapping):
        errors.append(SpecError(path, "must be a mapping"))
        return SimulationSettings()
    for key in doc:
        if key not in _SIM_KEYS:
            errors.append(
                SpecError(f"{path}.{key}", f"unknown field (expected one of: {', '.join(sorted(_SIM_KEYS))})")
            )
    default = SimulationSettings()
    scale = _number(doc, "timeScale", path, errors, positive=True)
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        errors.append(SpecError(f"{path}.seed", f"must be an integer, not {seed!r}"))
        seed = None
    step = default.step_s
    if doc.get("step") is not None:
        try:
            step = parse_duration(doc["step"], f"{path}.step", allow_zero=False)
        except SpecError as exc:
            errors.append(exc)
    namespace = doc.get("kubevirtNamespace", default.kubevirt_namespace)
    if not isinstance(namespace, str) or not namespace:
        errors.append(SpecError(f"{path}.kubevirtNamespace", f"must be a namespace name, not {namespace!r}"))
        namespace = default.kubevirt_namespace
    delays = Delays()
    raw_delays = doc.get("delays")
    if raw_delays is not None:
        if not isinstance(raw_delays, Mapping):
            errors.append(SpecError(f"{path}.delays", "must be a mapping"))
        else:
            for key in raw_delays:
                if key not in _DELAY_KEYS:
                    errors.append(SpecError(f"{path}.delays.{key}", "unknown field"))
            values: dict[str, float] = {}
            for key, attr in (
                ("targetPodScheduled", "target_pod_scheduled_s"),
                ("targetReady", "target_ready_s"),
                ("migrationStart", "migration_start_s"),
            ):
                if raw_delays.get(key) is not None:
                    try:
                        values[attr] = parse_duration(raw_delays[key], f"{path}.delays.{key}")
                    except SpecError as exc:
                        errors.append(exc)
            jitter = _number(raw_delays, "jitter", f"{path}.delays", errors, positive=False)
            if jitter is not None and jitter >= 1:
                errors.append(SpecError(f"{path}.delays.jitter", f"must be below 1, not {jitter}"))
                jitter = None
            delays = Delays(**values, jitter=delays.jitter if jitter is None else jitter)
    cpu = doc.get("migrationCpu") or {}
    src = dst = None
    if not isinstance(cpu, Mapping):
        errors.append(SpecError(f"{path}.migrationCpu", "must be a mapping with source and target"))
    else:
        src = _number(cpu, "source", f"{path}.migrationCpu", errors, positive=False)
        dst = _number(cpu, "target", f"{path}.migrationCpu", errors, positive=False)
    annotate = doc.get("bandwidthAnnotation", True)
    if not isinstance(annotate, bool):
        errors.append(SpecError(f"{path}.bandwidthAnnotation", f"must be true or false, not {annotate!r}"))
        annotate = True
    return SimulationSettings(
        bandwidth_annotation=annotate,
        time_scale=default.time_scale if scale is None else scale,
        seed=default.seed if seed is None else int(seed),
        step_s=step,
        kubevirt_namespace=namespace,
        delays=delays,
        migration_cpu_source_cores=default.migration_cpu_source_cores if src is None else src,
        migration_cpu_target_cores=default.migration_cpu_target_cores if dst is None else dst,
    )


def _parse_policies(
    doc: object, errors: list[SpecError]
) -> tuple[tuple[KvMigrationPolicy, ...], tuple[dict[str, Any], ...]]:
    if doc is None:
        return (), ()
    if not isinstance(doc, list):
        errors.append(SpecError("kubevirtPolicies", "must be a list of KubeVirt MigrationPolicy manifests"))
        return (), ()
    policies: list[KvMigrationPolicy] = []
    manifests: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, item in enumerate(doc):
        path = f"kubevirtPolicies[{i}]"
        if not isinstance(item, Mapping):
            errors.append(SpecError(path, "must be a MigrationPolicy manifest"))
            continue
        try:
            policy = parse_kv_migration_policy(item, path)
        except SpecErrors as exc:
            errors.extend(exc.errors)
            continue
        if policy.name in names:
            errors.append(SpecError(f"{path}.metadata.name", f"duplicate policy name {policy.name!r}"))
        names.add(policy.name)
        policies.append(policy)
        manifests.append(
            {
                "apiVersion": f"{MIGRATION_POLICY_GROUP}/{MIGRATION_POLICY_VERSION}",
                "kind": "MigrationPolicy",
                "metadata": {"name": policy.name, "labels": dict((item.get("metadata") or {}).get("labels") or {})},
                "spec": dict(item.get("spec") or {}),
            }
        )
    return tuple(policies), tuple(manifests)


def parse_scenario(doc: Mapping[str, Any]) -> Scenario:
    """Validate a whole scenario, collecting every problem (cluster part and scenario-only keys) before raising."""
    errors: list[SpecError] = []
    snapshot: ClusterSnapshot | None = None
    version = DEFAULT_KUBEVIRT_VERSION
    feature_gates: tuple[str, ...] = ()
    kubevirt_doc = doc.get("kubevirt")
    if isinstance(kubevirt_doc, Mapping) and ("version" in kubevirt_doc or "featureGates" in kubevirt_doc):
        # Scenario-only: the snapshot's `kubevirt:` section is the migration configuration, without a version or
        # feature gates.
        if "version" in kubevirt_doc:
            try:
                version = parse_kubevirt_version(kubevirt_doc["version"], "kubevirt.version")
            except SpecError as exc:
                errors.append(exc)
        gates = kubevirt_doc.get("featureGates")
        if gates is not None:
            if not isinstance(gates, list) or not all(isinstance(g, str) and g for g in gates):
                errors.append(SpecError("kubevirt.featureGates", "must be a list of feature gate names"))
            else:
                feature_gates = tuple(gates)
        doc = {**doc, "kubevirt": {k: v for k, v in kubevirt_doc.items() if k not in ("version", "featureGates")}}
    try:
        snapshot = parse_snapshot(doc)
    except SpecErrors as exc:
        errors.extend(exc.errors)
    simulation = _parse_simulation(doc.get("simulation"), errors)
    policies, manifests = _parse_policies(doc.get("kubevirtPolicies"), errors)
    indexed: list[tuple[int, Fault]] = []
    raw_faults = doc.get("faults")
    if raw_faults is not None and not isinstance(raw_faults, list):
        errors.append(SpecError("faults", "must be a list of faults"))
    for i, item in enumerate(raw_faults if isinstance(raw_faults, list) else []):
        try:
            indexed.append((i, parse_fault(item, f"faults[{i}]")))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    faults = tuple(f for _, f in indexed)
    if snapshot is not None:
        nodes = {n.name for n in snapshot.nodes}
        vmis = {v.key for v in snapshot.vmis}
        for i, f in indexed:
            if f.node is not None and f.node not in nodes:
                errors.append(SpecError(f"faults[{i}].node", f"no node named {f.node!r} in the scenario"))
            if f.vmi is not None and f.vmi not in vmis:
                errors.append(SpecError(f"faults[{i}].vmi", f"no VMI {f.vmi!r} in the scenario"))
    if snapshot is not None:
        errors.extend(real_time_problems(snapshot, simulation.time_scale, "simulation.timeScale"))
    if errors or snapshot is None:
        raise SpecErrors(errors)
    listed = doc.get("vmis")
    raw_vmis: list[Any] = listed if isinstance(listed, list) else []
    vmi_documents = {f"{v.get('namespace')}/{v.get('name')}": v for v in raw_vmis if isinstance(v, Mapping)}
    return Scenario(
        kubevirt_version=version,
        feature_gates=feature_gates,
        vmi_documents=vmi_documents,
        snapshot=snapshot,
        kubevirt=snapshot.kubevirt,
        kubevirt_manifest=snapshot.kubevirt.to_manifest(),
        policies=policies,
        policy_manifests=manifests,
        faults=faults,
        simulation=simulation,
    )


def real_time_problems(snapshot: ClusterSnapshot, time_scale: float, path: str) -> list[SpecError]:
    """Real QEMU migrates in real time: a scenario with `backend: qemu` VMIs runs at time scale 1 only."""
    real = [v.key for v in snapshot.vmis if v.backend == "qemu"]
    if not real or time_scale == 1:
        return []
    shown = ", ".join(real[:3]) + (" ..." if len(real) > 3 else "")
    return [SpecError(path, f"must be 1, not {time_scale:g}: VMIs with backend: qemu ({shown}) run in real time")]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (YAML or JSON).  The only I/O here."""
    return parse_scenario(read_document(path))
