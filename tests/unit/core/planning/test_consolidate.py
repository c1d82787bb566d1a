"""Consolidation: fewest nodes under the headroom, least loaded emptied first, constraints and pins respected."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from livemig.core.planning import ConsolidationSpec, PlanningSpec, PlanStatus, plan_consolidation
from livemig.core.vocabulary import Purpose

SPEC = PlanningSpec(
    purpose=Purpose.CONSOLIDATION, consolidation=ConsolidationSpec(headroom_cpu=0.2, headroom_memory=0.2)
)


def spread_cluster(b: Any, per_node: int = 2, nodes: int = 6, **extra: Any) -> Any:
    # 6 nodes of 16 cores / 64 GiB, each with `per_node` VMIs of 2 cores / 8 GiB.
    return b.snapshot(
        [b.node(f"n{i}") for i in range(nodes)],
        [b.vmi(f"v{i}-{j}", f"n{i}", cpu=2, memory="8Gi", **extra) for i in range(nodes) for j in range(per_node)],
    )


def end_usage(snap: Any, plan: Any) -> dict[str, tuple[float, float]]:
    location = {v.key: v.node for v in snap.vmis}
    for m in plan.moves:
        location[m.vmi] = m.target
    out = {}
    for n in snap.nodes:
        on = [v for v in snap.vmis if location[v.key] == n.name]
        out[n.name] = (sum(v.cpu_cores for v in on), sum(v.memory_used_bytes for v in on))
    return out


def test_packs_to_the_lower_bound_and_keeps_headroom(b: Any) -> None:
    snap = spread_cluster(b)
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    assert plan.status is PlanStatus.READY
    b.check(snap, SPEC, plan)
    # 12 VMIs × 8 GiB = 96 GiB; 80 % of 64 GiB = 51.2 GiB per node -> at least 2 nodes.
    assert math.ceil(96 / 51.2) == 2
    assert plan.efficacy.nodes_used_after == 2
    assert len(plan.efficacy.nodes_released) == 4
    for cpu, mem in end_usage(snap, plan).values():
        assert cpu <= 16 * 0.8 + 1e-9
        assert mem <= 64 * b.GI * 0.8 + 1
    # VMIs on kept nodes stay: 8 VMIs move (4 nodes × 2), never a VMI of a kept node.
    kept = {n.name for n in snap.nodes} - set(plan.efficacy.nodes_released)
    assert all(m.source not in kept for m in plan.moves)
    assert len(plan.moves) == 8


def test_least_loaded_node_is_emptied_first_and_heaviest_kept(b: Any) -> None:
    snap = b.snapshot(
        [b.node("heavy"), b.node("light"), b.node("mid")],
        [
            b.vmi("h1", "heavy", cpu=3, memory="12Gi"),
            b.vmi("h2", "heavy", cpu=3, memory="12Gi"),
            b.vmi("m1", "mid", cpu=2, memory="8Gi"),
            b.vmi("m2", "mid", cpu=2, memory="8Gi"),
            b.vmi("l1", "light", cpu=1, memory="4Gi"),
        ],
    )
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    b.check(snap, SPEC, plan)
    assert plan.efficacy.nodes_released == ("light", "mid")
    assert plan.moves[0].source == "light"  # the first move empties the least loaded node
    assert {m.target for m in plan.moves} == {"heavy"}


def test_unmovable_vmis_pin_their_node(b: Any) -> None:
    snap = b.snapshot(
        [b.node("a"), b.node("b"), b.node("c")],
        [
            b.vmi("pinned", "a", cpu=1, memory="2Gi", liveMigratable=False),
            b.vmi("keep-me", "b", cpu=1, memory="2Gi", evictionStrategy="None"),
            b.vmi("free", "c", cpu=1, memory="2Gi"),
        ],
    )
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    b.check(snap, SPEC, plan)
    assert plan.efficacy.nodes_released == ("c",)
    assert [m.name for m in plan.moves] == ["free"]
    reasons = {s.vmi: s.reason for s in plan.skipped}
    assert "not live-migratable" in reasons["prod/pinned"]
    assert "evictionStrategy None" in reasons["prod/keep-me"]


def test_anti_affinity_costs_a_node(b: Any) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    snap = b.snapshot(
        [b.node(f"n{i}") for i in range(3)],
        [b.vmi(f"db{i}", f"n{i}", cpu=1, memory="2Gi", labels={"app": "db"}, affinity=anti) for i in range(3)],
    )
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    assert plan.moves == ()  # three replicas that must not share a node keep three nodes


def test_headroom_max_nodes_low_utilisation_and_cordon(b: Any) -> None:
    snap = spread_cluster(b)
    spec = replace(SPEC, consolidation=replace(SPEC.consolidation, max_nodes=1, cordon_released=True))
    plan = plan_consolidation(snap, spec, b.costs(spec))
    b.check(snap, spec, plan)
    assert len(plan.efficacy.nodes_released) == 1
    assert [(a.node, a.cordon) for a in plan.node_actions] == [(plan.efficacy.nodes_released[0], True)]
    # Every node is at 25 % CPU: a 20 % low-utilisation threshold makes none of them releasable.
    spec = replace(SPEC, consolidation=replace(SPEC.consolidation, low_cpu=0.2))
    assert plan_consolidation(snap, spec, b.costs(spec)).moves == ()
    # 60 % headroom: 0.4 × 64 GiB = 25.6 GiB per node -> 96 GiB needs 4 nodes.
    spec = replace(SPEC, consolidation=replace(SPEC.consolidation, headroom_cpu=0.6, headroom_memory=0.6))
    plan = plan_consolidation(snap, spec, b.costs(spec))
    assert plan.efficacy.nodes_used_after == 4


def test_cordoned_and_unhealthy_nodes_never_receive(b: Any) -> None:
    snap = b.snapshot(
        [b.node("a"), b.node("b"), b.node("cordoned", schedulable=False), b.node("sick", healthy=False)],
        [b.vmi("x", "a", cpu=1, memory="2Gi"), b.vmi("y", "b", cpu=1, memory="2Gi")],
    )
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    b.check(snap, SPEC, plan)
    assert len(plan.moves) == 1
    assert plan.moves[0].target in ("a", "b")


def test_swaps_gather_the_room_best_fit_scatters(b: Any) -> None:
    # a and b are pinned (a VMI that cannot move, 1 core each), leaving 10 cores on each; c and d hold 4 + 3 + 3
    # cores each.  Best fit decreasing puts both 4s on one node (2 left) and three 3s on the other (1 left): the
    # last 3 fits nowhere.  Swapping a 4 for a 3 between the two nodes gathers the room: {4, 3, 3} on each.
    spec = PlanningSpec(
        purpose=Purpose.CONSOLIDATION, consolidation=ConsolidationSpec(headroom_cpu=0.0, headroom_memory=0.0)
    )
    snap = b.snapshot(
        [b.node(n, cpu=11) for n in ("a", "b", "c", "d")],
        [
            b.vmi("pin-a", "a", cpu=1, memory="1Gi", liveMigratable=False),
            b.vmi("pin-b", "b", cpu=1, memory="1Gi", liveMigratable=False),
            *(b.vmi(f"{n}{i}", n, cpu=c, memory="1Gi") for n in ("c", "d") for i, c in enumerate((4, 3, 3))),
        ],
    )
    plan = plan_consolidation(snap, spec, b.costs(spec))
    b.check(snap, spec, plan)
    assert set(plan.efficacy.nodes_released) == {"c", "d"}
    assert plan.efficacy.nodes_used_after == 2
    for name, (cpu, _) in end_usage(snap, plan).items():
        assert cpu == (11 if name in ("a", "b") else 0)


def test_search_goes_on_past_a_lower_bound_far_below_what_packs(b: Any) -> None:
    # Usage says one node holds everything; required anti-affinity keeps the 8 "spread" VMIs on 8 distinct nodes.
    spread = {
        "labels": {"app": "spread"},
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
    }
    snap = b.snapshot(
        [b.node(f"n{i:02d}") for i in range(16)],
        [b.vmi(f"s{i}", f"n{i:02d}", cpu=0.5, memory="1Gi", **spread) for i in range(8)]
        + [b.vmi(f"t{i}", f"n{i:02d}", cpu=0.5, memory="1Gi") for i in range(8, 16)],
    )
    plan = plan_consolidation(snap, SPEC, b.costs(SPEC))
    assert plan.status is PlanStatus.READY
    assert len(plan.efficacy.nodes_released) == 8, plan.reason
    b.check(snap, SPEC, plan)
