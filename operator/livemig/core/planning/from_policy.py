"""A livemig policy (`LivemigPolicy`, the CRD's spec as parsed by livemig.core.policy) as a `PlanningSpec`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from livemig.core.planning.spec import (
    BalancingSpec,
    ConsolidationSpec,
    EvacuationSpec,
    LimitsSpec,
    MaintenanceSpec,
    PlanningSpec,
    Scope,
    TechniqueSpec,
    Thresholds,
)
from livemig.core.policy import LabelSelector, LivemigPolicy, Threshold, matches


@dataclass(frozen=True, slots=True)
class PolicySelector:
    """A policy's LabelSelector as a planning `Selector`."""

    selector: LabelSelector

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches(self.selector, labels)


def _selector(selector: LabelSelector | None) -> PolicySelector | None:
    return None if selector is None else PolicySelector(selector)


def planning_spec(policy: LivemigPolicy, previously_hot: frozenset[str] = frozenset()) -> PlanningSpec:
    """Map the policy's fields onto what the planners read (same meaning, planner-side names).  `previously_hot`:
    the hot nodes of the previous cycle (load balancing's hysteresis memory)."""
    limits = LimitsSpec(
        max_concurrent_migrations=policy.limits.max_concurrent_migrations,
        max_concurrent_migrations_per_node=policy.limits.max_concurrent_migrations_per_node,
        cooldown_s=policy.limits.cooldown_s,
        max_migrations_per_vmi=policy.limits.max_migrations_per_vmi,
        window_s=policy.limits.window_s,
    )
    t = policy.technique
    technique = TechniqueSpec(
        mode=t.mode,
        objective=t.objective,
        allow_post_copy=t.allow_post_copy,
        allow_auto_converge=t.allow_auto_converge,
        max_downtime_s=t.max_downtime_s,
        bandwidth_per_migration_bps=t.bandwidth_per_migration_bps,
        completion_timeout_per_gib=t.completion_timeout_per_gib,
    )
    balancing = BalancingSpec()
    lb = policy.load_balancing
    if lb is not None:
        p = lb.pressure

        hysteresis = lb.hysteresis

        def high(th: Threshold | None) -> float | None:
            return None if th is None else th.high

        def target(th: Threshold | None) -> float | None:
            # The hysteresis band: a node brought down ends at least `hysteresis` below high.
            return None if th is None else min(th.target, th.high - hysteresis)

        pc, pm, pio = (p.cpu, p.memory, p.io) if p is not None else (None, None, None)
        balancing = BalancingSpec(
            high=Thresholds(high(lb.cpu), high(lb.memory), high(pc), high(pm), high(pio)),
            target=Thresholds(target(lb.cpu), target(lb.memory), target(pc), target(pm), target(pio)),
            hysteresis=hysteresis,
            previously_hot=previously_hot,
        )
    consolidation = ConsolidationSpec()
    c = policy.consolidation
    if c is not None:
        consolidation = ConsolidationSpec(
            headroom_cpu=c.headroom.cpu if c.headroom.cpu is not None else 0.0,
            headroom_memory=c.headroom.memory if c.headroom.memory is not None else 0.0,
            low_cpu=c.low_utilization.cpu,
            low_memory=c.low_utilization.memory,
            max_nodes=c.max_nodes_per_cycle,
            cordon_released=c.cordon_emptied,
        )
    maintenance = MaintenanceSpec()
    m = policy.maintenance
    if m is not None:
        maintenance = MaintenanceSpec(
            node_names=m.node_names,
            node_selector=_selector(m.node_label_selector),
            cordoned=m.cordoned,
            window=(m.window.start_s, m.window.end_s) if m.window is not None else None,
            max_nodes_in_parallel=m.max_nodes_in_parallel,
        )
    return PlanningSpec(
        purpose=policy.purpose,
        scope=Scope(
            namespace_selector=_selector(policy.selector.namespace_selector),
            vmi_selector=_selector(policy.selector.vmi_selector),
            node_selector=_selector(policy.node_selector),
        ),
        limits=limits,
        technique=technique,
        balancing=balancing,
        consolidation=consolidation,
        maintenance=maintenance,
        evacuation=EvacuationSpec(),
        name=policy.name,
    )
