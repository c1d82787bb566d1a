"""A livemig MigrationPolicy as frozen value objects: the CRD's spec in snake_case, parsed and defaulted.

Durations are seconds (`*_s`), bandwidths bytes per second (`*_bps`), times epoch seconds.  Built only by
`livemig.core.policy.parse.parse_policy`, which applies the same defaults and rules as the CRD
(crds/livemig.io_migrationpolicies.yaml).  Label selectors are livemig.core.selectors' (shared with the snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from livemig.core.selectors import LabelSelector
from livemig.core.vocabulary import Objective, Purpose, TechniqueMode

API_VERSION = "livemig.io/v1alpha1"
KIND = "MigrationPolicy"

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Comparison(StrEnum):
    """`spec.evacuation.comparison`: how a node's health value is compared with the threshold."""

    GREATER_THAN = "GreaterThan"
    LESS_THAN = "LessThan"


@dataclass(frozen=True, slots=True)
class VmiSelector:
    """`spec.selector`: None parts match everything."""

    namespace_selector: LabelSelector | None = None
    vmi_selector: LabelSelector | None = None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Absolute window, epoch seconds; start < end."""

    start_s: float
    end_s: float

    def contains(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass(frozen=True, slots=True)
class Maintenance:
    node_names: tuple[str, ...] = ()
    node_label_selector: LabelSelector | None = None
    cordoned: bool = False
    window: TimeWindow | None = None
    max_nodes_in_parallel: int = 1


@dataclass(frozen=True, slots=True)
class Evacuation:
    health_query: str
    threshold: float
    node_label: str = "node"
    comparison: Comparison = Comparison.GREATER_THAN
    for_s: float = 120.0

    def is_unhealthy(self, value: float) -> bool:
        if self.comparison is Comparison.GREATER_THAN:
            return value > self.threshold
        return value < self.threshold


@dataclass(frozen=True, slots=True)
class Threshold:
    """Fractions 0..1: above `high` a node is hot; moves aim for `target` (< high)."""

    high: float
    target: float


@dataclass(frozen=True, slots=True)
class PressureThresholds:
    cpu: Threshold | None = None
    memory: Threshold | None = None
    io: Threshold | None = None


@dataclass(frozen=True, slots=True)
class LoadBalancing:
    cpu: Threshold | None = None
    memory: Threshold | None = None
    pressure: PressureThresholds | None = None
    hysteresis: float = 0.05
    averaging_window_s: float = 300.0


@dataclass(frozen=True, slots=True)
class ResourceFractions:
    cpu: float | None = None
    memory: float | None = None


@dataclass(frozen=True, slots=True)
class Consolidation:
    low_utilization: ResourceFractions
    headroom: ResourceFractions = ResourceFractions(cpu=0.2, memory=0.2)
    max_nodes_per_cycle: int = 1
    cordon_emptied: bool = False


@dataclass(frozen=True, slots=True)
class TechniquePolicy:
    """`spec.technique`.  None means "the cluster's KubeVirt setting" (or, for max_downtime_s, no livemig limit)."""

    mode: TechniqueMode = TechniqueMode.AUTO
    objective: Objective = Objective.BALANCED
    allow_post_copy: bool = False
    allow_auto_converge: bool = False
    max_downtime_s: float | None = None
    bandwidth_per_migration_bps: float | None = None
    completion_timeout_per_gib: int | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrent_migrations: int = 2
    max_concurrent_migrations_per_node: int = 1
    cooldown_s: float = 600.0
    max_migrations_per_vmi: int = 3
    window_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class PrometheusQueries:
    """`spec.prometheus.queries`: None = the operator's built-in query."""

    node_cpu_utilization: str | None = None
    node_memory_utilization: str | None = None
    node_cpu_pressure: str | None = None
    node_memory_pressure: str | None = None
    node_io_pressure: str | None = None
    vmi_cpu_usage: str | None = None
    vmi_memory_usage: str | None = None
    vmi_dirty_rate: str | None = None


@dataclass(frozen=True, slots=True)
class PrometheusOverrides:
    url: str | None = None
    timeout_s: float = 10.0
    max_age_s: float = 120.0
    queries: PrometheusQueries = PrometheusQueries()


@dataclass(frozen=True, slots=True)
class LivemigPolicy:
    """A validated, defaulted livemig MigrationPolicy (cluster-scoped: a name, no namespace)."""

    name: str
    purpose: Purpose
    selector: VmiSelector = VmiSelector()
    node_selector: LabelSelector | None = None
    maintenance: Maintenance | None = None
    evacuation: Evacuation | None = None
    load_balancing: LoadBalancing | None = None
    consolidation: Consolidation | None = None
    technique: TechniquePolicy = TechniquePolicy()
    limits: Limits = Limits()
    dry_run: bool = False
    interval_s: float = 60.0
    prometheus: PrometheusOverrides | None = None
    generation: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
