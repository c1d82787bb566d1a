"""One evaluation of one livemig policy: a snapshot and what the other policies are doing in, a decision out.  Pure.

The operator's cycle and `livemig plan --kubeconfig` both call `evaluate`: the what-if prints exactly what the
operator would do now.  It applies the rules that sit between the cluster and the planners:
- the policy's own checks the CRD cannot express (a selector that matches nothing, named nodes that do not exist);
- **no decision on bad data**: LoadBalancing, Consolidation and Evacuation plan no move while an input they need is
  unavailable; Maintenance still drains, choosing techniques conservatively (docs/operator.md);
- **many policies, one cluster**: a VMI another policy of higher priority has claimed (queued or migrating) is left
  alone, and no VMI is moved onto a node another policy drains or evacuates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from livemig.core.cluster import ClusterSnapshot
from livemig.core.inventory import Inventory
from livemig.core.planning import Plan, plan_for_policy
from livemig.core.policy import LivemigPolicy, matches
from livemig.core.release import PURPOSE_RANK
from livemig.core.vocabulary import Purpose, TechniqueMode


class Result(StrEnum):
    """`status.lastEvaluation.result` (the CRD's enum)."""

    PLANNED = "Planned"
    NOTHING_TO_DO = "NothingToDo"
    DRY_RUN = "DryRun"
    OUTSIDE_WINDOW = "OutsideWindow"
    STALE_METRICS = "StaleMetrics"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class MetricsState:
    """What the metrics source gave for this policy: each problem names the query and the error."""

    required: tuple[str, ...] = ()  # problems with inputs the purpose cannot decide without
    dirty_rate: tuple[str, ...] = ()  # problems with VMI dirty rates (Maintenance: choose techniques conservatively)
    optional: tuple[str, ...] = ()  # problems with inputs the purpose can do without
    unmeasured_vmis: frozenset[str] = frozenset()  # VMIs (ns/name) left in place for want of their own samples
    unmeasured: tuple[str, ...] = ()  # the problems that name them

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.required, *self.dirty_rate, *self.optional, *self.unmeasured)))


@dataclass(frozen=True, slots=True)
class Claims:
    """What the other policies hold: VMIs (ns/name -> claiming policy and its purpose) and nodes being drained."""

    vmis: Mapping[str, tuple[str, Purpose]] = field(default_factory=dict)
    draining_nodes: Mapping[str, str] = field(default_factory=dict)  # node -> policy draining or evacuating it


@dataclass(frozen=True, slots=True)
class Evaluation:
    result: Result
    message: str
    plan: Plan | None  # None when no plan was made (bad data, outside the window)
    candidates: int  # VMIs in the policy's scope
    warnings: tuple[str, ...] = ()  # semantic problems (become a condition and Events)
    degraded: tuple[str, ...] = ()  # why the decision was made on less than full data
    conservative: bool = False  # techniques chosen without dirty rates


def in_scope(policy: LivemigPolicy, snapshot: ClusterSnapshot, namespace: str, labels: Mapping[str, str]) -> bool:
    ns_selector, vmi_selector = policy.selector.namespace_selector, policy.selector.vmi_selector
    if ns_selector is not None and not matches(ns_selector, snapshot.namespace_labels(namespace)):
        return False
    return vmi_selector is None or matches(vmi_selector, labels)


def semantic_warnings(policy: LivemigPolicy, snapshot: ClusterSnapshot, candidates: int) -> list[str]:
    warnings: list[str] = []
    if candidates == 0:
        warnings.append("spec.selector matches no running VMI")
    if policy.node_selector is not None and not any(matches(policy.node_selector, n.labels) for n in snapshot.nodes):
        warnings.append("spec.nodeSelector matches no node")
    if policy.maintenance is not None:
        missing = [n for n in policy.maintenance.node_names if not snapshot.has_node(n)]
        if missing:
            warnings.append(f"spec.maintenance.nodeNames: no such node: {', '.join(missing)}")
    return warnings


def conservative_policy(policy: LivemigPolicy) -> LivemigPolicy:
    """Techniques without dirty rates: never post-copy under Auto (a link failure after the switch loses the VM, a
    risk not worth taking blind); auto-converge where allowed (it converges whatever the dirty rate), else pre-copy."""
    t = policy.technique
    if t.mode is not TechniqueMode.AUTO:
        return policy
    return replace(policy, technique=replace(t, allow_post_copy=False))


def evaluate(
    policy: LivemigPolicy,
    inventory: Inventory,
    metrics: MetricsState,
    claims: Claims = Claims(),
    *,
    unhealthy_nodes: frozenset[str] = frozenset(),
    previously_hot: frozenset[str] = frozenset(),
) -> Evaluation:
    snapshot = inventory.snapshot
    candidates = sum(1 for v in snapshot.vmis if in_scope(policy, snapshot, v.namespace, v.labels))
    warnings = semantic_warnings(policy, snapshot, candidates)
    purpose = policy.purpose
    if purpose is not Purpose.MAINTENANCE and metrics.required:
        problems = metrics.required
        return Evaluation(
            Result.STALE_METRICS,
            "no move planned: metrics unavailable: " + "; ".join(problems),
            None,
            candidates,
            tuple(warnings),
            degraded=problems,
        )
    window = policy.maintenance.window if policy.maintenance is not None else None
    if window is not None and not window.contains(snapshot.time_s):
        return Evaluation(Result.OUTSIDE_WINDOW, "outside spec.maintenance.window", None, candidates, tuple(warnings))

    rank = PURPOSE_RANK[purpose]
    claimed = {
        key
        for key, (owner, owner_purpose) in claims.vmis.items()
        if owner != policy.name and PURPOSE_RANK[owner_purpose] <= rank
    }
    blocked_targets = {node for node, owner in claims.draining_nodes.items() if owner != policy.name}
    # A VMI on a node that is not Ready cannot be migrated: no virt-handler there to send it (KubeVirt would start
    # the target and wait at TargetReady until the VMI is failed at its heartbeat timeout).
    not_ready = {n.name for n in snapshot.nodes if not n.healthy}
    held = claimed | inventory.busy | metrics.unmeasured_vmis
    vmis = tuple(
        replace(v, live_migratable=False) if v.key in held or v.node in not_ready else v for v in snapshot.vmis
    )
    nodes = tuple(
        replace(
            n,
            schedulable=n.schedulable and n.name not in blocked_targets,
            healthy=n.healthy and n.name not in unhealthy_nodes,
        )
        for n in snapshot.nodes
    )
    planned_on = replace(snapshot, vmis=vmis, nodes=nodes)
    conservative = purpose is Purpose.MAINTENANCE and bool(metrics.dirty_rate)
    effective = conservative_policy(policy) if conservative else policy
    plan = plan_for_policy(planned_on, effective, previously_hot=previously_hot)
    degraded = metrics.all
    result = (Result.DRY_RUN if policy.dry_run else Result.PLANNED) if plan.moves else Result.NOTHING_TO_DO
    message = plan.reason
    scoped = {v.key for v in snapshot.vmis if in_scope(policy, snapshot, v.namespace, v.labels)}
    if claimed & scoped:
        message += f"; {len(claimed)} VMI(s) left to higher-priority policies"
    if unmeasured := metrics.unmeasured_vmis & scoped:
        message += f"; {len(unmeasured)} VMI(s) without samples of their own left in place"
    return Evaluation(result, message, plan, candidates, tuple(warnings), degraded, conservative)
