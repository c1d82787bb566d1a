"""Turning a planner's decisions into a `Plan`: schedule under the limits, waves, efficacy indicators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livemig.core.cluster import ClusterSnapshot, Vmi
from livemig.core.planning.costs import CostModel, MoveCost
from livemig.core.planning.framework import Efficacy, Move, NodeAction, Plan, PlanStatus, Skipped, plan_id
from livemig.core.planning.limits import Job, Limits, SlotTracker, schedule, waves
from livemig.core.planning.placement import ClusterState, stddev
from livemig.core.planning.spec import PlanningSpec


@dataclass(frozen=True, slots=True)
class Decision:
    """A move a planner decided on, before scheduling."""

    vmi: Vmi
    source: str
    target: str
    bandwidth_bps: float
    cost: MoveCost
    reason: str


def cost_for(model: CostModel, limits: Limits, state: ClusterState, vmi: Vmi, target: str) -> tuple[float, MoveCost]:
    bandwidth = limits.move_bandwidth_bps(state.nodes[state.location[vmi.key]], state.nodes[target])
    return bandwidth, model.cost(vmi, bandwidth)


def assemble(
    snapshot: ClusterSnapshot,
    spec: PlanningSpec,
    limits: Limits,
    decisions: Sequence[Decision],
    skipped: Sequence[Skipped],
    scope_nodes: Sequence[str],
    before: ClusterState,
    after: ClusterState,
    *,
    reason: str,
    status: PlanStatus | None = None,
    released: Sequence[str] = (),
    node_actions: Sequence[NodeAction] = (),
    intervals: Sequence[tuple[float, float]] | None = None,
    over_threshold: Callable[[ClusterState], int] | None = None,
) -> Plan:
    """Schedule `decisions` in their order (unless the planner already did: `intervals`) and build the plan."""
    if intervals is None:
        jobs = [Job(d.source, d.target, d.bandwidth_bps, d.cost.total_time_s) for d in decisions]
        intervals = schedule(jobs, SlotTracker(limits, snapshot))
    wave_of = waves(intervals)
    moves = [
        Move(
            namespace=d.vmi.namespace,
            name=d.vmi.name,
            source=d.source,
            target=d.target,
            technique=d.cost.technique,
            predicted_time_s=d.cost.total_time_s,
            predicted_downtime_s=d.cost.downtime_s,
            predicted_risk_window_s=d.cost.risk_window_s,
            predicted_bytes=d.cost.transferred_bytes,
            bandwidth_bps=d.bandwidth_bps,
            reason=d.reason,
            technique_reason=d.cost.reason,
            start_s=start,
            finish_s=finish,
            wave=w,
        )
        for d, (start, finish), w in zip(decisions, intervals, wave_of, strict=True)
    ]
    order = sorted(range(len(moves)), key=lambda i: (moves[i].start_s, i))
    ordered = tuple(moves[i] for i in order)
    efficacy = efficacy_of(ordered, scope_nodes, before, after, released, over_threshold)
    if status is None:
        status = PlanStatus.READY if ordered else PlanStatus.NOTHING_TO_DO
    return Plan(
        id=plan_id(spec, snapshot, ordered),
        purpose=spec.purpose,
        policy=spec.name,
        status=status,
        reason=reason,
        snapshot_time_s=snapshot.time_s,
        moves=ordered if status is PlanStatus.READY else (),
        skipped=tuple(skipped),
        node_actions=tuple(node_actions) if status is PlanStatus.READY else (),
        efficacy=efficacy,
        limits=dict(limits.as_dict()),
    )


def efficacy_of(
    moves: Sequence[Move],
    scope_nodes: Sequence[str],
    before: ClusterState,
    after: ClusterState,
    released: Sequence[str],
    over_threshold: Callable[[ClusterState], int] | None,
) -> Efficacy:
    def used(state: ClusterState) -> int:
        return sum(1 for n in scope_nodes if state.vmis_on[n])

    cpu_b = [before.cpu_util(n) for n in scope_nodes]
    cpu_a = [after.cpu_util(n) for n in scope_nodes]
    mem_b = [before.mem_util(n) for n in scope_nodes]
    mem_a = [after.mem_util(n) for n in scope_nodes]
    return Efficacy(
        moves=len(moves),
        bytes_moved=sum(m.predicted_bytes for m in moves),
        total_downtime_s=sum(m.predicted_downtime_s for m in moves),
        makespan_s=max((m.finish_s for m in moves), default=0.0),
        nodes_released=tuple(released),
        nodes_used_before=used(before),
        nodes_used_after=used(after),
        cpu_max_before=max(cpu_b, default=0.0),
        cpu_max_after=max(cpu_a, default=0.0),
        memory_max_before=max(mem_b, default=0.0),
        memory_max_after=max(mem_a, default=0.0),
        cpu_stddev_before=stddev(cpu_b),
        cpu_stddev_after=stddev(cpu_a),
        memory_stddev_before=stddev(mem_b),
        memory_stddev_after=stddev(mem_a),
        nodes_over_threshold_before=over_threshold(before) if over_threshold else 0,
        nodes_over_threshold_after=over_threshold(after) if over_threshold else 0,
    )
