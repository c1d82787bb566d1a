"""KubeVirt's evacuation controller in the simulator: the drain taint (from `kubectl taint` or a scenario event)
empties the node with `kubevirt-evacuation-*` VMIMs under KubeVirt's caps (issue 13, item 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from livemig.devcluster import DevCluster
from support.stack_helpers import max_overlap, wait_until

from .test_sim_engine import scenario, vm

pytestmark = pytest.mark.integration


def _vmims(devcluster: DevCluster, ns: str) -> list[dict[str, Any]]:
    return list(json.loads(devcluster.kubectl("get", "vmim", "-n", ns, "-o", "json").stdout)["items"])


def _nodes_of(devcluster: DevCluster, ns: str) -> dict[str, str]:
    items = json.loads(devcluster.kubectl("get", "vmi", "-n", ns, "-o", "json").stdout)["items"]
    return {v["metadata"]["name"]: v["status"]["nodeName"] for v in items}


def test_drain_taint_evacuates_eligible_vmis_under_kubevirt_caps(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    vms = [vm(f"web-{i}", 0) for i in range(5)]
    vms += [vm("pinned", 0, liveMigratable=False), vm("other", 1)]
    doc = scenario(ns, vms, nodes=3, kubevirt={"parallelOutboundMigrationsPerNode": 2})
    doc["vmis"][5]["evictionStrategy"] = "LiveMigrate"
    sim = run_sim(doc, time_scale=20)
    devcluster.kubectl("taint", "node", f"{ns}-n0", "kubevirt.io/drain=:NoSchedule")
    wait_until(
        lambda: all(_nodes_of(devcluster, ns)[f"web-{i}"] != f"{ns}-n0" for i in range(5)),
        timeout_s=90,
        what="the five migratable VMIs off the tainted node",
    )
    vmims = _vmims(devcluster, ns)
    assert {v["spec"]["vmiName"] for v in vmims} == {f"web-{i}" for i in range(5)}
    for v in vmims:
        assert v["metadata"]["name"].startswith("kubevirt-evacuation-")
        assert v["metadata"]["annotations"]["kubevirt.io/evacuationMigration"] == f"{ns}-n0"
        assert v["status"]["phase"] == "Succeeded"
    nodes = _nodes_of(devcluster, ns)
    assert nodes["pinned"] == f"{ns}-n0", "not live-migratable: KubeVirt's admission would refuse it"
    assert nodes["other"] == f"{ns}-n1"
    records = [r for r in sim.outcomes() if r["vmi"].startswith(f"{ns}/")]
    assert len(records) == 5
    assert all(r["target"] != f"{ns}-n0" for r in records), "the tainted node is no target"
    # parallelOutboundMigrationsPerNode (2) bounds what one pass creates and what runs at once.
    assert max_overlap([(r["createdAt"], r["finishedAt"]) for r in records]) <= 2
    events = json.loads(devcluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    created = [
        e
        for e in events
        if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["kind"] == "VirtualMachineInstance"
    ]
    assert len(created) == 5
    assert all(e["message"].startswith("Created Migration kubevirt-evacuation-") for e in created)


def test_node_drain_scenario_event_starts_the_evacuation(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    doc = scenario(
        ns, [vm("a", 1), vm("b", 1)], nodes=3, faults=[{"type": "nodeDrain", "node": f"{ns}-n1", "at": "5s"}]
    )
    run_sim(doc, time_scale=20)
    wait_until(
        lambda: set(_nodes_of(devcluster, ns).values()).isdisjoint({f"{ns}-n1"}),
        timeout_s=90,
        what="both VMIs off the drained node",
    )
    node = json.loads(devcluster.kubectl("get", "node", f"{ns}-n1", "-o", "json").stdout)
    assert {"key": "kubevirt.io/drain", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert all(v["metadata"]["name"].startswith("kubevirt-evacuation-") for v in _vmims(devcluster, ns))
