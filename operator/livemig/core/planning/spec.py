"""What a planner needs from a livemig policy, as small frozen dataclasses with defaults.

The CRD's `LivemigPolicy` (livemig.core.policy) is turned into a `PlanningSpec` by `planning_spec(policy)` in
policy_bridge.py; tests and benchmarks may build a `PlanningSpec` directly.  Fractions are 0..1, durations seconds,
rates bytes/s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from livemig.core.vocabulary import Objective, Purpose, TechniqueMode


class Selector(Protocol):
    """Anything that says whether a label set matches (a Kubernetes LabelSelector)."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """Which VMIs and nodes a policy covers.  None = everything."""

    namespace_selector: Selector | None = None
    vmi_selector: Selector | None = None
    node_selector: Selector | None = None


@dataclass(frozen=True, slots=True)
class LimitsSpec:
    """`spec.limits`.  None = no livemig limit (KubeVirt's own limits still apply)."""

    max_concurrent_migrations: int | None = None
    max_concurrent_migrations_per_node: int | None = None
    cooldown_s: float = 0.0
    max_migrations_per_vmi: int | None = None
    window_s: float = 86400.0


@dataclass(frozen=True, slots=True)
class TechniqueSpec:
    """`spec.technique`.  None = KubeVirt's configuration in force."""

    mode: TechniqueMode = TechniqueMode.AUTO
    objective: Objective = Objective.BALANCED
    allow_post_copy: bool | None = None
    allow_auto_converge: bool | None = None
    max_downtime_s: float | None = None
    bandwidth_per_migration_bps: float | None = None
    completion_timeout_per_gib: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Utilisation and PSI pressure fractions (0..1) per resource; None = not considered."""

    cpu: float | None = None
    memory: float | None = None
    pressure_cpu: float | None = None
    pressure_memory: float | None = None
    pressure_io: float | None = None


@dataclass(frozen=True, slots=True)
class BalancingSpec:
    """`spec.loadBalancing`: a node above `high` is brought under `target`; no node is pushed over `target`.

    Hysteresis with memory: a node in `previously_hot` (the hot nodes the previous cycle decided with,
    `Plan.hot_nodes`) stays hot while any resource is above `high - hysteresis`."""

    high: Thresholds = Thresholds(cpu=0.8, memory=0.85)
    target: Thresholds = Thresholds(cpu=0.7, memory=0.75)
    hysteresis: float = 0.0
    previously_hot: frozenset[str] = frozenset()

    def stay_hot(self) -> Thresholds:
        """The thresholds a previously hot node must stay above to remain hot: each `high` lowered by the band."""
        h, band = self.high, self.hysteresis
        return Thresholds(
            *(
                None if x is None else x - band
                for x in (h.cpu, h.memory, h.pressure_cpu, h.pressure_memory, h.pressure_io)
            )
        )


@dataclass(frozen=True, slots=True)
class ConsolidationSpec:
    """`spec.consolidation`: release nodes while every kept node stays under (1 − headroom) of its capacity."""

    headroom_cpu: float = 0.2
    headroom_memory: float = 0.2
    low_cpu: float | None = None  # only nodes under both low fractions may be released; None = no limit
    low_memory: float | None = None
    max_nodes: int | None = None  # nodes released per plan (maxNodesPerCycle); None = no limit
    cordon_released: bool = False
    label_released: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MaintenanceSpec:
    """`spec.maintenance`: which nodes to drain (union of the three)."""

    node_names: tuple[str, ...] = ()
    node_selector: Selector | None = None
    cordoned: bool = False  # drain every cordoned node in scope
    window: tuple[float, float] | None = None  # [start, end) epoch seconds; outside it nothing is drained
    max_nodes_in_parallel: int | None = None  # nodes draining at once; None = no limit


@dataclass(frozen=True, slots=True)
class EvacuationSpec:
    """`spec.evacuation`: nodes marked unhealthy in the snapshot are evacuated, plus any named here."""

    node_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanningSpec:
    purpose: Purpose
    scope: Scope = Scope()
    limits: LimitsSpec = LimitsSpec()
    technique: TechniqueSpec = TechniqueSpec()
    balancing: BalancingSpec = BalancingSpec()
    consolidation: ConsolidationSpec = ConsolidationSpec()
    maintenance: MaintenanceSpec = MaintenanceSpec()
    evacuation: EvacuationSpec = EvacuationSpec()
    name: str = ""  # the policy's name, for plan ids
