"""KubeVirt's migration configuration and KubeVirt MigrationPolicy objects: parsing, matching, precedence, merging.

Mirrors KubeVirt v1.8: `spec.configuration.migrations` of the KubeVirt CR (same names, same defaults) and
`migrations.kubevirt.io/v1alpha1` MigrationPolicy (`pkg/virt-controller/watch/migration/migrationpolicy.go`).
Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from livemig.core.errors import SpecError, SpecErrors
from livemig.core.units import parse_bytes

MIGRATION_POLICY_GROUP = "migrations.kubevirt.io"
MIGRATION_POLICY_VERSION = "v1alpha1"
MIGRATION_POLICY_PLURAL = "migrationpolicies"


@dataclass(frozen=True, slots=True)
class MigrationConfiguration:
    """KubeVirt's `MigrationConfiguration` (the fields the simulator acts on), with KubeVirt's defaults."""

    parallel_migrations_per_cluster: int = 5
    parallel_outbound_migrations_per_node: int = 2
    bandwidth_per_migration_bps: int = 0  # bytes/s; 0 = unlimited
    completion_timeout_per_gib: int = 150
    progress_timeout_s: int = 150
    allow_auto_converge: bool = False
    allow_post_copy: bool = False
    allow_workload_disruption: bool | None = None  # None: follows allow_post_copy

    @property
    def allows_workload_disruption(self) -> bool:
        if self.allow_workload_disruption is None:
            return self.allow_post_copy
        return self.allow_workload_disruption

    def to_manifest(self) -> dict[str, Any]:
        """The `spec.configuration.migrations` object for the KubeVirt CR."""
        doc: dict[str, Any] = {
            "parallelMigrationsPerCluster": self.parallel_migrations_per_cluster,
            "parallelOutboundMigrationsPerNode": self.parallel_outbound_migrations_per_node,
            "bandwidthPerMigration": str(self.bandwidth_per_migration_bps),
            "completionTimeoutPerGiB": self.completion_timeout_per_gib,
            "progressTimeout": self.progress_timeout_s,
            "allowAutoConverge": self.allow_auto_converge,
            "allowPostCopy": self.allow_post_copy,
        }
        if self.allow_workload_disruption is not None:
            doc["allowWorkloadDisruption"] = self.allow_workload_disruption
        return doc


def _bool(doc: Mapping[str, Any], key: str, path: str, errors: list[SpecError]) -> bool | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        errors.append(SpecError(f"{path}.{key}", f"must be true or false, not {value!r}"))
        return None
    return value


def _int(doc: Mapping[str, Any], key: str, path: str, errors: list[SpecError], *, minimum: int = 0) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(SpecError(f"{path}.{key}", f"must be an integer, not {value!r}"))
        return None
    if value < minimum:
        errors.append(SpecError(f"{path}.{key}", f"must be at least {minimum}, got {value}"))
        return None
    return value


def _bandwidth(doc: Mapping[str, Any], key: str, path: str, errors: list[SpecError]) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    try:
        return parse_bytes(value, f"{path}.{key}")
    except SpecError as exc:
        errors.append(exc)
        return None


def parse_migration_configuration(doc: Mapping[str, Any] | None, path: str = "kubevirt") -> MigrationConfiguration:
    """Parse `spec.configuration.migrations` (or a scenario's `kubevirt:` section); unset fields keep defaults."""
    if doc is None:
        return MigrationConfiguration()
    if not isinstance(doc, Mapping):
        raise SpecErrors([SpecError(path, "must be a mapping")])
    errors: list[SpecError] = []
    default = MigrationConfiguration()
    cluster = _int(doc, "parallelMigrationsPerCluster", path, errors, minimum=1)
    node = _int(doc, "parallelOutboundMigrationsPerNode", path, errors, minimum=1)
    bandwidth = _bandwidth(doc, "bandwidthPerMigration", path, errors)
    per_gib = _int(doc, "completionTimeoutPerGiB", path, errors)
    progress = _int(doc, "progressTimeout", path, errors)
    auto_converge = _bool(doc, "allowAutoConverge", path, errors)
    post_copy = _bool(doc, "allowPostCopy", path, errors)
    disruption = _bool(doc, "allowWorkloadDisruption", path, errors)
    if errors:
        raise SpecErrors(errors)
    return MigrationConfiguration(
        parallel_migrations_per_cluster=default.parallel_migrations_per_cluster if cluster is None else cluster,
        parallel_outbound_migrations_per_node=default.parallel_outbound_migrations_per_node if node is None else node,
        bandwidth_per_migration_bps=0 if bandwidth is None else bandwidth,
        completion_timeout_per_gib=default.completion_timeout_per_gib if per_gib is None else per_gib,
        progress_timeout_s=default.progress_timeout_s if progress is None else progress,
        allow_auto_converge=bool(auto_converge),
        allow_post_copy=bool(post_copy),
        allow_workload_disruption=disruption,
    )


@dataclass(frozen=True, slots=True)
class KvMigrationPolicy:
    """A KubeVirt MigrationPolicy (cluster-scoped).  `None` fields fall back to the KubeVirt CR."""

    name: str
    has_selectors: bool = True  # `selectors: nil` never matches
    vmi_selector: Mapping[str, str] | None = None
    namespace_selector: Mapping[str, str] | None = None
    allow_auto_converge: bool | None = None
    allow_post_copy: bool | None = None
    allow_workload_disruption: bool | None = None
    bandwidth_per_migration_bps: int | None = None
    completion_timeout_per_gib: int | None = None

    @property
    def sets_any_field(self) -> bool:
        return any(
            v is not None
            for v in (
                self.allow_auto_converge,
                self.allow_post_copy,
                self.allow_workload_disruption,
                self.bandwidth_per_migration_bps,
                self.completion_timeout_per_gib,
            )
        )


def _label_map(doc: Mapping[str, Any], key: str, path: str, errors: list[SpecError]) -> Mapping[str, str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors.append(SpecError(f"{path}.{key}", "must be a map of label keys to string values"))
        return None
    return dict(value)


def parse_kv_migration_policy(manifest: Mapping[str, Any], path: str = "migrationPolicy") -> KvMigrationPolicy:
    """Parse a MigrationPolicy manifest (`metadata.name`, `spec`).  Negative numbers are rejected, as KubeVirt does."""
    errors: list[SpecError] = []
    metadata = manifest.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        errors.append(SpecError(f"{path}.metadata.name", "is required"))
        name = ""
    spec = manifest.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise SpecErrors([SpecError(f"{path}.spec", "must be a mapping")])
    selectors = spec.get("selectors")
    has_selectors = selectors is not None
    vmi_sel: Mapping[str, str] | None = None
    ns_sel: Mapping[str, str] | None = None
    if selectors is not None:
        if not isinstance(selectors, Mapping):
            errors.append(SpecError(f"{path}.spec.selectors", "must be a mapping"))
        else:
            vmi_sel = _label_map(selectors, "virtualMachineInstanceSelector", f"{path}.spec.selectors", errors)
            ns_sel = _label_map(selectors, "namespaceSelector", f"{path}.spec.selectors", errors)
    sp = f"{path}.spec"
    policy = KvMigrationPolicy(
        name=name,
        has_selectors=has_selectors,
        vmi_selector=vmi_sel,
        namespace_selector=ns_sel,
        allow_auto_converge=_bool(spec, "allowAutoConverge", sp, errors),
        allow_post_copy=_bool(spec, "allowPostCopy", sp, errors),
        allow_workload_disruption=_bool(spec, "allowWorkloadDisruption", sp, errors),
        bandwidth_per_migration_bps=_bandwidth(spec, "bandwidthPerMigration", sp, errors),
        completion_timeout_per_gib=_int(spec, "completionTimeoutPerGiB", sp, errors),
    )
    if errors:
        raise SpecErrors(errors)
    return policy


def _count_matching(
    policy: KvMigrationPolicy, vmi_labels: Mapping[str, str] | None, namespace_labels: Mapping[str, str] | None
) -> tuple[bool, int, int]:
    """KubeVirt's countMatchingLabels: (matches, VMI-label matches, namespace-label matches).

    Quirk kept from KubeVirt: both selectors are evaluated only when the VMI's label map is non-nil.
    """
    if not policy.has_selectors:
        return False, 0, 0
    vmi_count = 0
    ns_count = 0
    if vmi_labels is None:
        return True, 0, 0
    if policy.vmi_selector is not None:
        for key, value in policy.vmi_selector.items():
            if vmi_labels.get(key) != value:
                return False, 0, 0
            vmi_count += 1
    if policy.namespace_selector is not None:
        labels = namespace_labels or {}
        for key, value in policy.namespace_selector.items():
            if labels.get(key) != value:
                return False, 0, 0
            ns_count += 1
    return True, vmi_count, ns_count


def match_kv_migration_policy(
    policies: Sequence[KvMigrationPolicy],
    vmi_labels: Mapping[str, str] | None,
    namespace_labels: Mapping[str, str] | None,
) -> KvMigrationPolicy | None:
    """The policy KubeVirt applies: highest total match count, then more VMI-label matches, then smallest name."""
    best: tuple[int, int, str] | None = None
    chosen: KvMigrationPolicy | None = None
    for policy in policies:
        matches, vmi_count, ns_count = _count_matching(policy, vmi_labels, namespace_labels)
        if not matches:
            continue
        # Sort key: larger total first, larger VMI count first, smaller name first.
        key = (-(vmi_count + ns_count), -vmi_count, policy.name)
        if best is None or key < best:
            best = key
            chosen = policy
    return chosen


def apply_kv_migration_policy(
    config: MigrationConfiguration, policy: KvMigrationPolicy | None
) -> MigrationConfiguration:
    """KubeVirt's merge: start from the CR; `allowWorkloadDisruption` follows a policy's `allowPostCopy` when unset;
    then every field the policy sets overrides."""
    if policy is None:
        return config
    merged = config
    if policy.allow_post_copy is not None and policy.allow_workload_disruption is None:
        merged = replace(merged, allow_workload_disruption=policy.allow_post_copy)
    if policy.allow_auto_converge is not None:
        merged = replace(merged, allow_auto_converge=policy.allow_auto_converge)
    if policy.allow_post_copy is not None:
        merged = replace(merged, allow_post_copy=policy.allow_post_copy)
    if policy.allow_workload_disruption is not None:
        merged = replace(merged, allow_workload_disruption=policy.allow_workload_disruption)
    if policy.bandwidth_per_migration_bps is not None:
        merged = replace(merged, bandwidth_per_migration_bps=policy.bandwidth_per_migration_bps)
    if policy.completion_timeout_per_gib is not None:
        merged = replace(merged, completion_timeout_per_gib=policy.completion_timeout_per_gib)
    return merged


@dataclass(frozen=True, slots=True)
class HandoffDecision:
    """What virt-controller records at hand-off (v1.8): the config in force and, if recorded, the policy name."""

    config: MigrationConfiguration
    policy_name: str | None  # recorded in migrationState.migrationPolicyName (v1.8: only if the policy set a field)
    matched_policy: str | None  # the policy that matched, recorded or not


def decide_handoff_config(
    cluster_config: MigrationConfiguration,
    policies: Sequence[KvMigrationPolicy],
    vmi_labels: Mapping[str, str] | None,
    namespace_labels: Mapping[str, str] | None,
) -> HandoffDecision:
    """Evaluate KubeVirt MigrationPolicies once, at hand-off, as v1.8 does."""
    policy = match_kv_migration_policy(policies, vmi_labels, namespace_labels)
    if policy is None:
        return HandoffDecision(cluster_config, None, None)
    recorded = policy.name if policy.sets_any_field else None
    return HandoffDecision(apply_kv_migration_policy(cluster_config, policy), recorded, policy.name)
