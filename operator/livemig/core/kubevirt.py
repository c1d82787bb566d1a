"""KubeVirt's migration configuration and KubeVirt MigrationPolicy objects: parsing, matching, precedence, merging.

Mirrors KubeVirt v1.8: `spec.configuration.migrations` of the KubeVirt CR (same names, same defaults) and
`migrations.kubevirt.io/v1alpha1` MigrationPolicy (`pkg/virt-controller/watch/migration/migrationpolicy.go`).
One type for the configuration, `KubevirtMigrationConfig`, read from a snapshot's or scenario's `kubevirt:`
section (`livemig.core.snapshot_parser.parse_snapshot`) and from the KubeVirt CR itself (the simulator); the
planners, the simulator and (to predict which KubeVirt policy applies) the operator share the policy rules below.
Pure: values in, values out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from livemig.core.errors import SpecError, SpecErrors, join_path, value_kind
from livemig.core.units import parse_bitrate, parse_bytes, parse_duration

MIGRATION_POLICY_GROUP = "migrations.kubevirt.io"
MIGRATION_POLICY_VERSION = "v1alpha1"
MIGRATION_POLICY_PLURAL = "migrationpolicies"
DEFAULT_NODE_DRAIN_TAINT_KEY = "kubevirt.io/drain"
#: KubeVirt migration settings that are accepted (so a real configuration can be pasted) but not used by livemig.
KUBEVIRT_IGNORED = frozenset({"network", "disableTLS", "unsafeMigrationOverride", "matchSELinuxLevelOnMigration"})
_KNOWN = (
    "parallelMigrationsPerCluster", "parallelOutboundMigrationsPerNode", "bandwidthPerMigration",
    "completionTimeoutPerGiB", "progressTimeout", "allowAutoConverge", "allowPostCopy",
    "allowWorkloadDisruption", "nodeDrainTaintKey", *sorted(KUBEVIRT_IGNORED),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KubevirtMigrationConfig:
    """KubeVirt's `spec.configuration.migrations` in force (same names, same defaults, KubeVirt's integer types)."""

    parallel_migrations_per_cluster: int = 5
    parallel_outbound_migrations_per_node: int = 2
    bandwidth_per_migration_bps: int = 0  # bytes/s; 0 = unlimited
    completion_timeout_per_gib: int = 150
    progress_timeout_s: int = 150
    allow_auto_converge: bool = False
    allow_post_copy: bool = False
    allow_workload_disruption: bool | None = None  # None: follows allow_post_copy (`allows_workload_disruption`)
    node_drain_taint_key: str = DEFAULT_NODE_DRAIN_TAINT_KEY

    @property
    def allows_workload_disruption(self) -> bool:
        """KubeVirt's resolved `allowWorkloadDisruption`: the explicit value, else `allowPostCopy`."""
        if self.allow_workload_disruption is None:
            return self.allow_post_copy
        return self.allow_workload_disruption

    def handoff_manifest(self) -> dict[str, Any]:
        """`migrationState.migrationConfiguration` as KubeVirt records it at hand-off: the configuration in force with
        its defaults filled in and `allowWorkloadDisruption` resolved (kubevirt.md §4.3)."""
        doc = self.to_manifest()
        doc["allowWorkloadDisruption"] = self.allows_workload_disruption
        doc["nodeDrainTaintKey"] = self.node_drain_taint_key
        return doc

    def migration_bandwidth_bps(self, link_bandwidth_bps: float) -> float:
        """The rate one migration can use on a link: the link, capped by bandwidthPerMigration when set."""
        if self.bandwidth_per_migration_bps > 0:
            return min(link_bandwidth_bps, float(self.bandwidth_per_migration_bps))
        return link_bandwidth_bps

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
        if self.node_drain_taint_key != DEFAULT_NODE_DRAIN_TAINT_KEY:
            doc["nodeDrainTaintKey"] = self.node_drain_taint_key
        return doc


# ------------------------------------------------------------------------------------------------- the version

_VERSION = re.compile(r"^v1\.(\d+)(?:\.(\d+))?$")
SUPPORTED_KUBEVIRT_MINORS = (5, 6, 7, 8)


@dataclass(frozen=True, slots=True, order=True)
class KubevirtVersion:
    """The KubeVirt release whose behaviour is mimicked (v1.5.x to v1.8.x)."""

    minor: int
    patch: int = 0

    @property
    def tag(self) -> str:
        """As KubeVirt publishes it in the KubeVirt CR's `status.observedKubeVirtVersion`."""
        return f"v1.{self.minor}.{self.patch}"

    @property
    def completed_on_failure(self) -> bool:
        """v1.5 copied virt-launcher's `completed` (true on failure too); from v1.6 only success sets it."""
        return self.minor < 6

    @property
    def has_added_node_selector(self) -> bool:
        """VMIM `spec.addedNodeSelector` exists from v1.6; v1.5's CRD has no such field (the API server prunes it)."""
        return self.minor >= 6

    @property
    def has_migration_priority(self) -> bool:
        """VMIM `spec.priority` exists from v1.7."""
        return self.minor >= 7

    def priority_queue_enabled(self, feature_gates: Iterable[str]) -> bool:
        """KubeVirt's `MigrationPriorityQueue` gate: Alpha in v1.7, Beta in v1.8, GA only in v1.9; KubeVirt enables
        only GA gates by default (`isFeatureGateEnabled`), so up to v1.8 it is on only when the KubeVirt CR lists it
        in `spec.configuration.developerConfiguration.featureGates` (and v1.5/v1.6 have no such code at all)."""
        return self.minor >= 7 and MIGRATION_PRIORITY_QUEUE_GATE in feature_gates


DEFAULT_KUBEVIRT_VERSION = KubevirtVersion(8)
MIGRATION_PRIORITY_QUEUE_GATE = "MigrationPriorityQueue"


def parse_kubevirt_version(value: object, path: str) -> KubevirtVersion:
    """`v1.5` .. `v1.8` (or with a patch number, `v1.8.0`)."""
    match = _VERSION.match(value) if isinstance(value, str) else None
    supported = ", ".join(f"v1.{m}" for m in SUPPORTED_KUBEVIRT_MINORS)
    if match is None or int(match.group(1)) not in SUPPORTED_KUBEVIRT_MINORS:
        raise SpecError(path, f"must be a supported KubeVirt version ({supported}), not {value!r}")
    return KubevirtVersion(int(match.group(1)), int(match.group(2) or 0))


# ------------------------------------------------------------------------------------------ the migration config


def read_migration_configuration(
    value: object, path: str, errors: list[SpecError], *, manifest: bool = False, also_known: Sequence[str] = ()
) -> KubevirtMigrationConfig:
    """Read `spec.configuration.migrations` (or a snapshot's `kubevirt:` section), appending problems to `errors`.

    Unset fields keep KubeVirt's defaults.  A `kubevirt:` section (the default) rejects unknown fields and wants
    timeouts of at least 1 s; `manifest=True` reads the KubeVirt CR as stored, which carries fields livemig does not
    model (ignored) and where 0 is a valid timeout.  `also_known`: keys the caller reads itself from the same
    section (listed in the unknown-field message).  Counts and seconds are whole numbers, as in KubeVirt's API;
    `bandwidthPerMigration` is bytes/s (`64Mi`) or a bit rate (`1Gbit`), and `progressTimeout` may be a duration.
    """
    default = KubevirtMigrationConfig()
    if value is None:
        return default
    if not isinstance(value, Mapping):
        errors.append(SpecError(path, f"must be an object, not {value_kind(value)}"))
        return default
    if not manifest:
        known = (*_KNOWN, *also_known)
        for key in value:
            if key not in known:
                errors.append(
                    SpecError(join_path(path, str(key)), f"unknown field (expected one of: {', '.join(known)})")
                )
    timeout_minimum = 0 if manifest else 1
    kw: dict[str, Any] = {}
    for key, attr in (
        ("parallelMigrationsPerCluster", "parallel_migrations_per_cluster"),
        ("parallelOutboundMigrationsPerNode", "parallel_outbound_migrations_per_node"),
    ):
        if value.get(key) is not None:
            kw[attr] = _whole(value[key], join_path(path, key), errors, minimum=1)
    if value.get("bandwidthPerMigration") is not None:
        where = join_path(path, "bandwidthPerMigration")
        rate = _quantity(parse_bitrate, value["bandwidthPerMigration"], where, errors, allow_zero=True)
        kw["bandwidth_per_migration_bps"] = None if rate is None else math.ceil(rate)
    if value.get("completionTimeoutPerGiB") is not None:
        where = join_path(path, "completionTimeoutPerGiB")
        kw["completion_timeout_per_gib"] = _whole(value["completionTimeoutPerGiB"], where, errors, timeout_minimum)
    if value.get("progressTimeout") is not None:
        where = join_path(path, "progressTimeout")
        raw = value["progressTimeout"]
        seconds = _quantity(parse_duration, raw, where, errors, allow_zero=manifest)
        if seconds is not None and not seconds.is_integer():
            errors.append(SpecError(where, f"must be a whole number of seconds, not {raw!r}"))
            seconds = None
        kw["progress_timeout_s"] = None if seconds is None else int(seconds)
    for key, attr in (
        ("allowAutoConverge", "allow_auto_converge"),
        ("allowPostCopy", "allow_post_copy"),
        ("allowWorkloadDisruption", "allow_workload_disruption"),
    ):
        kw[attr] = _bool(value, key, path, errors)
    if value.get("nodeDrainTaintKey") is not None:
        key = value["nodeDrainTaintKey"]
        if not isinstance(key, str) or not key:
            errors.append(SpecError(join_path(path, "nodeDrainTaintKey"), f"must be a non-empty string, not {key!r}"))
        else:
            kw["node_drain_taint_key"] = key
    # allow_workload_disruption stays None when unset: it follows allowPostCopy (`allows_workload_disruption`).
    return replace(default, **{k: v for k, v in kw.items() if v is not None})


def parse_migration_configuration(
    doc: object, path: str = "kubevirt", *, manifest: bool = False
) -> KubevirtMigrationConfig:
    """`read_migration_configuration`, raising SpecErrors listing every problem."""
    errors: list[SpecError] = []
    config = read_migration_configuration(doc, path, errors, manifest=manifest)
    if errors:
        raise SpecErrors(errors)
    return config


def _whole(value: object, path: str, errors: list[SpecError], minimum: int) -> int | None:
    """A whole number (5 or 5.0) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        errors.append(SpecError(path, f"must be an integer, not {value!r}"))
        return None
    if value < minimum:
        errors.append(SpecError(path, f"must be at least {minimum}, got {value!r}"))
        return None
    return int(value)


def _quantity(fn: Any, value: object, path: str, errors: list[SpecError], **kwargs: object) -> float | None:
    try:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SpecError(path, f"must be a quantity, not {value_kind(value)}")
        return float(fn(value, path, **kwargs))
    except SpecError as exc:
        errors.append(exc)
        return None


# ------------------------------------------------------------------------------ KubeVirt MigrationPolicy objects


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
    config: KubevirtMigrationConfig, policy: KvMigrationPolicy | None
) -> KubevirtMigrationConfig:
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

    config: KubevirtMigrationConfig
    policy_name: str | None  # recorded in migrationState.migrationPolicyName (v1.8: only if the policy set a field)
    matched_policy: str | None  # the policy that matched, recorded or not


def decide_handoff_config(
    cluster_config: KubevirtMigrationConfig,
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


__all__ = [
    "DEFAULT_KUBEVIRT_VERSION",
    "DEFAULT_NODE_DRAIN_TAINT_KEY",
    "KUBEVIRT_IGNORED",
    "MIGRATION_POLICY_GROUP",
    "MIGRATION_POLICY_PLURAL",
    "MIGRATION_POLICY_VERSION",
    "SUPPORTED_KUBEVIRT_MINORS",
    "HandoffDecision",
    "KubevirtMigrationConfig",
    "KubevirtVersion",
    "KvMigrationPolicy",
    "apply_kv_migration_policy",
    "decide_handoff_config",
    "match_kv_migration_policy",
    "parse_kubevirt_version",
    "parse_kv_migration_policy",
    "parse_migration_configuration",
    "read_migration_configuration",
]
