"""Maintenance and evacuation: every VMI off the drained nodes, valid targets, limits, order."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from livemig.core.planning import (
    EvacuationSpec,
    LimitsSpec,
    MaintenanceSpec,
    PlanningSpec,
    PlanStatus,
    plan_evacuation,
    plan_maintenance,
)
from livemig.core.planning.drain import plan_drain
from livemig.core.vocabulary import Purpose

MAINT = PlanningSpec(purpose=Purpose.MAINTENANCE, maintenance=MaintenanceSpec(node_names=("n0",)))


def cluster(b: Any, vms_on_n0: int = 6, **node0: Any) -> Any:
    return b.snapshot(
        [b.node("n0", cpu=64, memory="256Gi", **node0), b.node("n1"), b.node("n2"), b.node("n3")],
        [b.vmi(f"v{i}", "n0", cpu=1, memory=f"{2 + 2 * i}Gi", dirty="30Mi") for i in range(vms_on_n0)],
    )


def test_maintenance_empties_the_node_under_the_limits(b: Any) -> None:
    snap = cluster(b)
    plan = plan_maintenance(snap, MAINT, b.costs(MAINT))
    assert plan.status is PlanStatus.READY
    b.check(snap, MAINT, plan, drained={"n0"})
    assert len(plan.moves) == 6
    assert {m.source for m in plan.moves} == {"n0"}
    # One 10 Gbit link: a migration takes the whole link, so they run one at a time, back to back.
    ordered = sorted(plan.moves, key=lambda m: m.start_s)
    for prev, nxt in itertools.pairwise(ordered):
        assert nxt.start_s >= prev.finish_s - 1e-9
    # Longest first on the node.
    assert ordered[0].name == "v5"
    assert plan.efficacy.makespan_s == max(m.finish_s for m in plan.moves)
    assert plan.efficacy.makespan_s == sum(m.predicted_time_s for m in plan.moves)


def test_bandwidth_cap_lets_two_run_at_once(b: Any) -> None:
    snap = cluster(b, vms_on_n0=4)
    snap = replace(snap, kubevirt=replace(snap.kubevirt, bandwidth_per_migration_bps=64 * b.MI))
    plan = plan_maintenance(snap, MAINT, b.costs(MAINT, snap.kubevirt))
    b.check(snap, MAINT, plan, drained={"n0"})
    assert all(m.bandwidth_bps == 64 * b.MI for m in plan.moves)
    starts = sorted(m.start_s for m in plan.moves)
    assert starts[:2] == [0.0, 0.0]  # KubeVirt's 2 outbound per node, each capped at 64 MiB/s


def test_targets_exclude_cordoned_unhealthy_and_drained(b: Any) -> None:
    snap = b.snapshot(
        [
            b.node("n0", labels={"maint": "yes"}),
            b.node("n1", labels={"maint": "yes"}),
            b.node("cordoned", schedulable=False),
            b.node("sick", healthy=False),
            b.node("ok"),
        ],
        [b.vmi("a", "n0"), b.vmi("b", "n1")],
    )
    from livemig.core.cluster import LabelSelector

    spec = replace(MAINT, maintenance=MaintenanceSpec(node_selector=LabelSelector(match_labels={"maint": "yes"})))
    plan = plan_maintenance(snap, spec, b.costs(spec))
    b.check(snap, spec, plan, drained={"n0", "n1"})
    assert {m.target for m in plan.moves} == {"ok"}


def test_cordoned_nodes_are_drained_when_asked(b: Any) -> None:
    snap = b.snapshot([b.node("c", schedulable=False), b.node("d")], [b.vmi("x", "c")])
    spec = replace(MAINT, maintenance=MaintenanceSpec(cordoned=True))
    plan = plan_maintenance(snap, spec, b.costs(spec))
    assert [(m.name, m.target) for m in plan.moves] == [("x", "d")]


def test_window_and_nodes_in_parallel(b: Any) -> None:
    snap = b.snapshot(
        [b.node("a"), b.node("b"), b.node("t1"), b.node("t2")],
        [b.vmi("a1", "a"), b.vmi("a2", "a"), b.vmi("b1", "b"), b.vmi("b2", "b")],
        time=1000,
    )
    spec = replace(MAINT, maintenance=MaintenanceSpec(node_names=("a", "b"), window=(2000, 3000)))
    plan = plan_maintenance(snap, spec, b.costs(spec))
    assert plan.moves == ()
    assert "window" in plan.reason
    spec = replace(MAINT, maintenance=MaintenanceSpec(node_names=("a", "b"), max_nodes_in_parallel=1))
    plan = plan_maintenance(snap, spec, b.costs(spec))
    b.check(snap, spec, plan, drained={"a", "b"})
    first = min(plan.moves, key=lambda m: m.start_s).source
    other = "b" if first == "a" else "a"
    assert min(m.start_s for m in plan.moves if m.source == other) >= max(
        m.finish_s for m in plan.moves if m.source == first
    )


def test_most_work_first_beats_longest_first(b: Any) -> None:
    # One cluster slot.  Node a holds one long VMI; node b many short ones.  Serving the node with the most work
    # left first is no worse than global longest-first; with 2 slots it is strictly better here.
    vms = [b.vmi("long", "a", memory="32Gi", dirty="1Mi")] + [
        b.vmi(f"s{i}", "b", memory="6Gi", dirty="1Mi") for i in range(8)
    ]
    snap = b.snapshot([b.node("a"), b.node("b"), b.node("t1"), b.node("t2"), b.node("t3")], vms)
    spec = replace(
        MAINT, maintenance=MaintenanceSpec(node_names=("a", "b")), limits=LimitsSpec(max_concurrent_migrations=2)
    )
    plan = plan_maintenance(snap, spec, b.costs(spec))
    b.check(snap, spec, plan, drained={"a", "b"})
    # Lower bound: node b's bytes over its link (it has the most work), and everything over 2 links.
    link = 10e9 / 8
    lb = max(8 * 6 * b.GI / link, (32 + 48) * b.GI / (2 * link))
    assert plan.efficacy.makespan_s <= 1.15 * lb


def test_evacuation_soonest_first_and_only_healthy_targets(b: Any) -> None:
    snap = b.snapshot(
        [b.node("sick", healthy=False), b.node("sick2", healthy=False), b.node("ok1"), b.node("ok2")],
        [b.vmi(f"v{i}", "sick", memory=f"{2 * (6 - i)}Gi") for i in range(4)] + [b.vmi("w", "ok1")],
    )
    spec = PlanningSpec(purpose=Purpose.EVACUATION, evacuation=EvacuationSpec())
    plan = plan_evacuation(snap, spec, b.costs(spec))
    b.check(snap, spec, plan, drained={"sick", "sick2"})
    assert len(plan.moves) == 4
    assert {m.target for m in plan.moves} <= {"ok1", "ok2"}
    ordered = sorted(plan.moves, key=lambda m: m.start_s)
    times = [m.predicted_time_s for m in ordered]
    assert times == sorted(times)  # shortest predicted first


def test_unplaceable_vmis_are_reported(b: Any) -> None:
    snap = b.snapshot([b.node("a"), b.node("small", cpu=1)], [b.vmi("big", "a", cpu=4)])
    plan = plan_drain(snap, MAINT, b.costs(MAINT), ["a"], soonest_first=False)
    assert plan.moves == ()
    assert plan.skipped[0].vmi == "prod/big"
    assert "no feasible target" in plan.skipped[0].reason


def test_named_nodes_outside_the_node_selector_are_not_drained(b: Any) -> None:
    from livemig.core.cluster import LabelSelector
    from livemig.core.planning import Scope

    snap = b.snapshot(
        [b.node("in", labels={"zone": "a"}), b.node("out", labels={"zone": "b"}), b.node("t", labels={"zone": "a"})],
        [b.vmi("x", "in"), b.vmi("y", "out")],
    )
    spec = replace(
        MAINT,
        scope=Scope(node_selector=LabelSelector(match_labels={"zone": "a"})),
        maintenance=MaintenanceSpec(node_names=("in", "out", "ghost")),
    )
    plan = plan_maintenance(snap, spec, b.costs(spec))
    b.check(snap, spec, plan, drained={"in"})
    assert [(m.name, m.target) for m in plan.moves] == [("x", "t")]
    assert "outside spec.nodeSelector, not drained: out" in plan.reason
    assert "unknown nodes: ghost" in plan.reason


def test_targets_with_the_faster_link_win_below_the_preferred_fill(b: Any) -> None:
    # n0 sends at 40 Gbit/s.  slow (10 Gbit/s) is empty, fast (40 Gbit/s) half full: the least loaded target would
    # be slow and each move would take ~4x as long.  full (40 Gbit/s) would end above 85 %: a last resort.
    snap = b.snapshot(
        [
            b.node("n0", linkBandwidth="40Gbit"),
            b.node("slow"),
            b.node("fast", linkBandwidth="40Gbit"),
            b.node("full", linkBandwidth="40Gbit"),
        ],
        [
            *(b.vmi(f"v{i}", "n0", cpu=1, memory="4Gi", dirty="10Mi") for i in range(3)),
            b.vmi("half", "fast", cpu=8, memory="8Gi"),
            b.vmi("busy", "full", cpu=13.5, memory="8Gi"),
        ],
    )
    plan = plan_maintenance(snap, MAINT, b.costs(MAINT))
    b.check(snap, MAINT, plan, drained={"n0"})
    assert {m.target for m in plan.moves} == {"fast"}
    assert all(m.bandwidth_bps == 40e9 / 8 for m in plan.moves)
    # Were fast filled above 85 % too, the slow link would be next, not full.
    snap = replace(snap, vmis=tuple(replace(v, cpu_cores=13.0) if v.name == "half" else v for v in snap.vmis))
    plan = plan_maintenance(snap, MAINT, b.costs(MAINT))
    b.check(snap, MAINT, plan, drained={"n0"})
    assert {m.target for m in plan.moves} == {"slow"}
