"""Planners: snapshot + planning spec (from a livemig policy) + cost model → Plan.  Pure functions.

One entry point per purpose (`plan_load_balancing`, `plan_evacuation`, `plan_consolidation`, `plan_maintenance`),
and `plan()` which picks the one for the spec's purpose.  Limits are enforced in `limits.py`, placement constraints
in `placement.py`.  docs/planners.md describes each purpose.
"""

from __future__ import annotations

from collections.abc import Mapping

from livemig.core.cluster import ClusterSnapshot
from livemig.core.planning.balance import plan_load_balancing
from livemig.core.planning.consolidate import plan_consolidation
from livemig.core.planning.costs import CostModel, ModelCosts, MoveCost
from livemig.core.planning.drain import plan_evacuation, plan_maintenance
from livemig.core.planning.framework import Efficacy, Move, NodeAction, Plan, Planner, PlanStatus, Skipped
from livemig.core.planning.from_policy import planning_spec
from livemig.core.planning.limits import Limits
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
from livemig.core.policy import LivemigPolicy
from livemig.core.vocabulary import Purpose

PLANNERS: Mapping[Purpose, Planner] = {
    Purpose.LOAD_BALANCING: plan_load_balancing,
    Purpose.EVACUATION: plan_evacuation,
    Purpose.CONSOLIDATION: plan_consolidation,
    Purpose.MAINTENANCE: plan_maintenance,
}


def plan(snapshot: ClusterSnapshot, spec: PlanningSpec, model: CostModel) -> Plan:
    """The plan for the spec's purpose."""
    return PLANNERS[spec.purpose](snapshot, spec, model)


def plan_for_policy(
    snapshot: ClusterSnapshot,
    policy: LivemigPolicy,
    model: CostModel | None = None,
    *,
    previously_hot: frozenset[str] = frozenset(),
) -> Plan:
    """The operator's and the CLI's entry point: a policy as applied, the performance model unless given;
    `previously_hot`: the hot nodes of the previous cycle (`Plan.hot_nodes`; load balancing's hysteresis)."""
    spec = planning_spec(policy, previously_hot)
    return plan(snapshot, spec, model or ModelCosts.for_spec(spec.technique, snapshot.kubevirt))


__all__ = [
    "PLANNERS",
    "BalancingSpec",
    "ConsolidationSpec",
    "CostModel",
    "Efficacy",
    "EvacuationSpec",
    "Limits",
    "LimitsSpec",
    "MaintenanceSpec",
    "ModelCosts",
    "Move",
    "MoveCost",
    "NodeAction",
    "Plan",
    "PlanStatus",
    "Planner",
    "PlanningSpec",
    "Scope",
    "Skipped",
    "TechniqueSpec",
    "Thresholds",
    "plan",
    "plan_consolidation",
    "plan_evacuation",
    "plan_for_policy",
    "plan_load_balancing",
    "plan_maintenance",
    "planning_spec",
]
