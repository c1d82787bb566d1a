"""Scenario files, faults, the target scheduler and the clocks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from livemig.core.errors import SpecErrors
from livemig.core.snapshot_parser import parse_snapshot
from livemig.sim.clock import ManualClock, RealClock
from livemig.sim.faults import (
    Fault,
    FaultType,
    link_bandwidth_bps,
    link_failure_due,
    parse_fault,
    parse_faults,
    target_refuses,
    timed_faults_due,
)
from livemig.sim.scenario import load_scenario, parse_scenario
from livemig.sim.scheduler import Placement, pick_target_node, unschedulable_reason

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"


def scenario_doc(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "nodes": [
            {"name": "n1", "cpu": "8", "memory": "64Gi", "labels": {"zone": "a"}},
            {"name": "n2", "cpu": "8", "memory": "64Gi", "labels": {"zone": "b", "disk": "ssd"}},
            {
                "name": "n3",
                "cpu": "8",
                "memory": "16Gi",
                "labels": {"zone": "b"},
                "taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}],
            },
        ],
        "vmis": [
            {
                "namespace": "ns",
                "name": "vm-a",
                "node": "n1",
                "vcpus": 2,
                "memory": "8Gi",
                "usage": {"cpu": "1", "memory": "4Gi", "dirtyRate": "10Mi"},
                "labels": {"app": "db"},
            },
            {
                "namespace": "ns",
                "name": "vm-b",
                "node": "n2",
                "vcpus": 2,
                "memory": "8Gi",
                "usage": {"cpu": "1", "memory": "4Gi", "dirtyRate": "10Mi"},
                "labels": {"app": "db"},
            },
        ],
    }
    doc.update(extra)
    return doc


def test_example_scenarios_parse() -> None:
    small = load_scenario(EXAMPLES / "small.yaml")
    assert len(small.snapshot.nodes) == 8
    assert 55 <= len(small.snapshot.vmis) <= 65
    large = load_scenario(EXAMPLES / "large.yaml")
    assert len(large.snapshot.nodes) == 200
    assert len(large.snapshot.vmis) == 2000


def test_scenario_only_keys_are_parsed() -> None:
    s = parse_scenario(
        scenario_doc(
            simulation={"timeScale": 60, "seed": 7, "step": "500ms", "delays": {"targetReady": "3s", "jitter": 0}},
            kubevirtPolicies=[{"metadata": {"name": "pc"}, "spec": {"selectors": {}, "allowPostCopy": True}}],
            faults=[{"type": "slowLink", "node": "n1", "factor": 0.5}],
            kubevirt={"parallelMigrationsPerCluster": 3},
        )
    )
    assert s.simulation.time_scale == 60
    assert s.simulation.seed == 7
    assert s.simulation.step_s == 0.5
    assert s.simulation.delays.target_ready_s == 3
    assert s.simulation.delays.jitter == 0
    assert s.kubevirt.parallel_migrations_per_cluster == 3
    assert s.kubevirt is s.snapshot.kubevirt  # one parse of the `kubevirt:` section
    assert s.kubevirt_manifest["parallelMigrationsPerCluster"] == 3
    assert [p.name for p in s.policies] == ["pc"]
    assert s.policy_manifests[0]["apiVersion"] == "migrations.kubevirt.io/v1alpha1"
    assert s.faults == (Fault(FaultType.SLOW_LINK, node="n1", factor=0.5),)
    assert s.namespaces == ("ns",)
    # a scenario is a valid snapshot
    assert len(parse_snapshot(scenario_doc(simulation={"timeScale": 2})).vmis) == 2


def test_scenario_errors_are_collected_with_paths() -> None:
    with pytest.raises(SpecErrors) as err:
        parse_scenario(
            scenario_doc(
                simulation={"timeScale": 0, "bogus": 1, "delays": {"jitter": 2}},
                kubevirtPolicies=[{"metadata": {}, "spec": {}}, "x"],
                faults=[{"type": "nodeFailure", "node": "nope"}, {"type": "meteor"}],
            )
        )
    paths = {e.path for e in err.value.errors}
    assert {
        "simulation.timeScale",
        "simulation.bogus",
        "simulation.delays.jitter",
        "kubevirtPolicies[0].metadata.name",
        "kubevirtPolicies[1]",
        "faults[0].node",
        "faults[1].type",
    } <= paths


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"type": "linkFailure"}, "f"),
        ({"type": "linkFailure", "vmi": "ns/a", "node": "n1"}, "f"),
        ({"type": "linkFailure", "node": "n1", "afterMigrationStart": "5s"}, "f.afterMigrationStart"),
        ({"type": "linkFailure", "vmi": "noslash"}, "f.vmi"),
        ({"type": "slowLink", "node": "n1"}, "f"),
        ({"type": "slowLink", "node": "n1", "factor": 1.5}, "f.factor"),
        ({"type": "nodeFailure"}, "f.node"),
        ({"type": "nodeFailure", "node": "n1", "duration": "1m"}, "f.duration"),
        ({"type": "targetRefuses", "node": "n1", "at": "soon"}, "f.at"),
        ({"type": "targetRefuses", "node": "n1", "colour": "red"}, "f.colour"),
    ],
)
def test_bad_faults_name_the_field(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecErrors) as err:
        parse_fault(doc, "f")
    assert path in {e.path for e in err.value.errors}


def test_fault_decisions() -> None:
    slow = parse_fault({"type": "slowLink", "node": "n1", "factor": 0.25, "at": "10s", "duration": "10s"}, "f")
    cap = parse_fault({"type": "slowLink", "node": "n2", "bandwidth": "80Mbit"}, "f")
    assert link_bandwidth_bps([slow], 1000.0, "n1", "n2", 5) == 1000
    assert link_bandwidth_bps([slow], 1000.0, "n2", "n1", 15) == 250
    assert link_bandwidth_bps([slow], 1000.0, "n1", "n2", 20) == 1000
    assert link_bandwidth_bps([slow, cap], 100e6, "n1", "n2", 15) == 10e6
    refuse = parse_fault({"type": "targetRefuses", "node": "n3"}, "f", now_s=30)
    assert refuse.at_s == 30
    assert not target_refuses([refuse], "n3", 29)
    assert target_refuses([refuse], "n3", 31)
    assert not target_refuses([refuse], "n2", 31)
    link = parse_fault({"type": "linkFailure", "vmi": "ns/a", "afterMigrationStart": "20s"}, "f")
    assert not link_failure_due(link, "ns/a", None, 100)
    assert not link_failure_due(link, "ns/a", 100, 119)
    assert link_failure_due(link, "ns/a", 100, 120)
    assert not link_failure_due(link, "ns/b", 100, 120)
    faults = parse_faults(
        [
            {"type": "nodeFailure", "node": "n1", "at": "1m"},
            {"type": "linkFailure", "node": "n2", "at": "2m"},
            {"type": "linkFailure", "vmi": "ns/a"},
        ]
    )
    assert timed_faults_due(faults, set(), 59) == []
    assert timed_faults_due(faults, set(), 60) == [0]
    assert timed_faults_due(faults, {0}, 200) == [1]


def test_scheduler_respects_selectors_taints_capacity_and_anti_affinity() -> None:
    snap = parse_snapshot(scenario_doc())
    nodes = {n.name: n for n in snap.nodes}
    a, b = snap.vmis
    placements = [Placement(a, "n1"), Placement(b, "n2")]
    assert unschedulable_reason(a, nodes["n3"], placements) == "untolerated taint dedicated=x:NoSchedule"
    assert unschedulable_reason(a, nodes["n2"], placements, added_node_selector={"zone": "a"}) is not None
    assert unschedulable_reason(a, nodes["n2"], placements, node_ready=False) == "node is not ready"
    assert pick_target_node(a, "n1", snap.nodes, placements) == "n2"
    assert pick_target_node(a, "n1", snap.nodes, placements, added_node_selector={"disk": "hdd"}) is None
    full = [Placement(b, "n2")] * 8  # 64Gi of the node's 64Gi
    assert unschedulable_reason(a, nodes["n2"], full) == "insufficient memory"
    anti = parse_snapshot(
        scenario_doc(
            vmis=[
                {
                    "namespace": "ns",
                    "name": "vm-a",
                    "node": "n1",
                    "vcpus": 2,
                    "memory": "8Gi",
                    "labels": {"app": "db"},
                    "usage": {"cpu": "1", "memory": "4Gi", "dirtyRate": "10Mi"},
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {"app": "db"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                },
                {
                    "namespace": "ns",
                    "name": "vm-b",
                    "node": "n2",
                    "vcpus": 2,
                    "memory": "8Gi",
                    "labels": {"app": "db"},
                    "usage": {"cpu": "1", "memory": "4Gi", "dirtyRate": "10Mi"},
                },
            ]
        )
    )
    a2, b2 = anti.vmis
    assert unschedulable_reason(a2, nodes["n2"], [Placement(b2, "n2")]) == (
        "violates required pod anti-affinity (anti-affinity with ns/vm-b)"
    )


def test_scheduler_prefers_the_least_allocated_node() -> None:
    doc = scenario_doc()
    doc["nodes"][2] = {"name": "n3", "cpu": "8", "memory": "64Gi"}
    snap = parse_snapshot(doc)
    a, b = snap.vmis
    assert pick_target_node(a, "n1", snap.nodes, [Placement(a, "n1"), Placement(b, "n2")]) == "n3"


async def test_manual_clock_wakes_sleepers_only_when_advanced() -> None:
    clock = ManualClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.now())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.5)
    await task
    assert woke == [10.0]
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_real_clock_scales() -> None:
    with pytest.raises(ValueError, match="positive"):
        RealClock(0)
    clock = RealClock(60)
    assert clock.time_scale == 60
    assert clock.now() >= 0


@pytest.mark.parametrize("name", ["small", "large"])
def test_example_scenarios_are_what_the_generator_writes(name: str) -> None:
    path = EXAMPLES / f"{name}.yaml"
    first = path.read_text().splitlines()[0]
    args = first.split("generate.py ", 1)[1].split(";", 1)[0].split()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "generate.py"), *args, "--check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_kubevirt_version_default_and_choice() -> None:
    assert parse_scenario(scenario_doc()).kubevirt_version.tag == "v1.8.0"
    assert parse_scenario(scenario_doc(kubevirt={"version": "v1.5"})).kubevirt_version.tag == "v1.5.0"
    assert parse_scenario(scenario_doc(kubevirt={"version": "v1.7.2"})).kubevirt_version.tag == "v1.7.2"


@pytest.mark.parametrize("version", ["v1.4", "v1.9", "1.8", 8, "v2.0"])
def test_unsupported_kubevirt_version_is_refused(version: object) -> None:
    with pytest.raises(SpecErrors) as exc:
        parse_scenario(scenario_doc(kubevirt={"version": version}))
    assert [e.path for e in exc.value.errors] == ["kubevirt.version"]
    assert "v1.5, v1.6, v1.7, v1.8" in str(exc.value)
