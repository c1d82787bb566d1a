"""The simulator's scheduler and the planners' placement admit and refuse the same target pods on the same node
state (pods placed plus target pods in flight): one capacity rule and one anti-affinity rule, not two."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from livemig.core.planning.placement import ClusterState
from livemig.core.snapshot_parser import parse_snapshot
from livemig.sim.scheduler import Placement, unschedulable_reason

NODES = ("n1", "n2", "n3")
APPS = ("web", "db")


@st.composite
def clusters(draw: st.DrawFn) -> tuple[Any, list[tuple[int, str]]]:
    nodes = [
        {
            "name": name,
            "cpu": draw(st.sampled_from([2, 4, 8])),
            "memory": draw(st.sampled_from(["8Gi", "16Gi", "24Gi"])),
            "labels": {"topology.kubernetes.io/zone": draw(st.sampled_from(["a", "b"]))},
            "otherRequests": {"cpu": draw(st.sampled_from([0, 0.5])), "memory": draw(st.sampled_from(["0", "1Gi"]))},
        }
        for name in NODES
    ]
    vmis = []
    for i in range(draw(st.integers(2, 7))):
        vmi: dict[str, Any] = {
            "namespace": "ns",
            "name": f"vm{i}",
            "node": draw(st.sampled_from(NODES)),
            "vcpus": draw(st.integers(1, 16)),
            "memory": draw(st.sampled_from(["1Gi", "2Gi", "4Gi", "6Gi"])),
            "labels": {"app": draw(st.sampled_from(APPS))},
        }
        if draw(st.booleans()):
            vmi["requests"] = {"cpu": draw(st.sampled_from(["100m", "1", "3"]))}
        if draw(st.integers(0, 3)) == 0:
            key = draw(st.sampled_from(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]))
            vmi["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": draw(st.sampled_from(APPS))}}, "topologyKey": key}
                    ]
                }
            }
        vmis.append(vmi)
    kubevirt = {
        "cpuAllocationRatio": draw(st.sampled_from([1, 4, 10])),
        "memoryOvercommit": draw(st.sampled_from([100, 150])),
    }
    snap = parse_snapshot(
        {
            "apiVersion": "livemig.io/v1alpha1",
            "kind": "ClusterSnapshot",
            "kubevirt": kubevirt,
            "nodes": nodes,
            "vmis": vmis,
        }
    )
    moves = draw(st.lists(st.tuples(st.integers(0, len(vmis) - 1), st.sampled_from(NODES)), max_size=4))
    return snap, moves


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_simulator_and_planner_admit_and_refuse_alike(case: tuple[Any, list[tuple[int, str]]]) -> None:
    snap, moves = case
    state = ClusterState(snap, NODES)
    for index, target in moves:  # target pods in flight: the plan's earlier moves
        vmi = snap.vmis[index]
        if target != state.location[vmi.key]:
            state.move(vmi, target)
    placements = [Placement(v, v.node) for v in snap.vmis]
    placements += [Placement(v, state.location[v.key]) for v in snap.vmis if state.location[v.key] != v.node]
    nodes = {n.name: n for n in snap.nodes}
    for vmi in snap.vmis:
        if state.location[vmi.key] != vmi.node:
            continue  # already moving
        for name in NODES:
            if name == vmi.node:
                continue
            planner = state.request_reason(vmi, name) or state.anti_affinity_reason(vmi, nodes[name])
            simulator = unschedulable_reason(vmi, nodes[name], placements, sizing=snap.launcher, nodes=snap.nodes)
            assert (planner is None) == (simulator is None), (vmi.key, name, planner, simulator)
