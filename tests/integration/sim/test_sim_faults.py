"""Every fault, from the scenario and from the control endpoint, seen through the API server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from livemig.devcluster import DevCluster

from .test_sim_engine import create_vmim, get, scenario, vm, wait_phase

pytestmark = pytest.mark.integration

HOST = "kubernetes.io/hostname"


def test_faults_from_the_scenario_and_the_control_endpoint(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    post_copy = {
        "metadata": {"name": f"{ns}-pc"},
        "spec": {
            "selectors": {"virtualMachineInstanceSelector": {"technique": "post-copy"}},
            "allowPostCopy": True,
            "completionTimeoutPerGiB": 1,
        },
    }
    vms = [
        vm("link-pre", 0, memory="8Gi", dirty="50Mi"),
        vm("link-post", 1, memory="8Gi", dirty="1Gi", labels={"technique": "post-copy"}),
        vm("refused", 2),
        vm("doomed-a", 3),
        vm("doomed-b", 3),
        vm("slow", 4, memory="4Gi", dirty="1Mi"),
        vm("fast", 5, memory="4Gi", dirty="1Mi"),
    ]
    faults = [
        {"type": "linkFailure", "vmi": f"{ns}/link-pre", "afterMigrationStart": "5s"},
        {"type": "linkFailure", "vmi": f"{ns}/link-post", "afterMigrationStart": "15s"},  # post-copy from 9 s
        {"type": "slowLink", "node": f"{ns}-n4", "factor": 0.1},
    ]
    sim = run_sim(scenario(ns, vms, nodes=10, link="1Gbit", policies=[post_copy], faults=faults), time_scale=20)
    try:
        # link failure in pre-copy: the migration fails, the VM stays on its source and keeps running
        assert create_vmim(devcluster, ns, "m-link-pre", "link-pre").returncode == 0
        wait_phase(devcluster, ns, "m-link-pre", "Failed")
        status = get(devcluster, ns, "vmi", "link-pre")["status"]
        assert status["phase"] == "Running"
        assert status["nodeName"] == f"{ns}-n0"
        assert status["migrationState"]["failed"] is True

        # link failure after the post-copy switch: the VM is lost
        assert create_vmim(devcluster, ns, "m-link-post", "link-post").returncode == 0
        wait_phase(devcluster, ns, "m-link-post", "Failed")
        status = get(devcluster, ns, "vmi", "link-post")["status"]
        assert status["phase"] == "Failed"
        assert status["migrationState"]["mode"] == "PostCopy"

        # a target that refuses (posted now): the migration fails in PreparingTarget, the VM stays
        code, body = sim.post_fault({"type": "targetRefuses", "node": f"{ns}-n6"})
        assert code == 201, body
        assert create_vmim(devcluster, ns, "m-refused", "refused", addedNodeSelector={HOST: f"{ns}-n6"}).returncode == 0
        wait_phase(devcluster, ns, "m-refused", "Failed")
        phases = [t["phase"] for t in get(devcluster, ns, "vmim", "m-refused")["status"]["phaseTransitionTimestamps"]]
        assert phases[-2:] == ["PreparingTarget", "Failed"]
        assert get(devcluster, ns, "vmi", "refused")["status"]["nodeName"] == f"{ns}-n2"

        # a slow link: the same migration takes much longer from the slowed node
        assert create_vmim(devcluster, ns, "m-slow", "slow", addedNodeSelector={HOST: f"{ns}-n7"}).returncode == 0
        assert create_vmim(devcluster, ns, "m-fast", "fast", addedNodeSelector={HOST: f"{ns}-n8"}).returncode == 0
        wait_phase(devcluster, ns, "m-slow", "Succeeded")
        wait_phase(devcluster, ns, "m-fast", "Succeeded")

        # node failure (posted now): the node turns NotReady (40 s grace), and at KubeVirt's virt-handler heartbeat
        # timeout (5-6 min simulated, 15-18 s here) the node is marked unschedulable and its VMIs fail
        code, body = sim.post_fault({"type": "nodeFailure", "node": f"{ns}-n3"})
        assert code == 201, body
        devcluster.kubectl("wait", f"node/{ns}-n3", "--for=condition=Ready=false", "--timeout=30s")
        for name in ("doomed-a", "doomed-b"):
            devcluster.kubectl(
                "wait", "-n", ns, f"vmi/{name}", "--for=jsonpath={.status.phase}=Failed", "--timeout=60s"
            )
        node = json.loads(devcluster.kubectl("get", "node", f"{ns}-n3", "-o", "json").stdout)
        assert node["metadata"]["labels"]["kubevirt.io/schedulable"] == "false"
    finally:
        devcluster.kubectl("delete", "migrationpolicy", f"{ns}-pc", "--ignore-not-found")

    records = {r["vmi"].split("/")[1]: r for r in sim.wait_outcomes(5)}
    assert records["link-pre"]["outcome"] == "failed"
    assert not records["link-pre"]["vmLost"]
    assert records["link-post"]["vmLost"] is True
    assert records["refused"]["result"] == "Failed"
    assert records["slow"]["simulated"]["total_time_s"] > 5 * records["fast"]["simulated"]["total_time_s"]
    state = sim.state()
    assert state["vmisLost"] == 3
    assert state["faultsFired"]["linkFailure"] == 2
    assert state["faultsFired"]["targetRefuses"] == 1
    assert state["faultsFired"]["nodeFailure"] == 1
    assert state["nodesNotReady"] == [f"{ns}-n3"]
    metrics = sim.metrics()
    assert "livemig_sim_vmis_lost_total 3.0" in metrics


def test_control_endpoint_rejects_bad_faults_naming_the_field(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    sim = run_sim(scenario(namespace, [vm("a", 0)]))
    code, body = sim.post_fault({"type": "slowLink", "node": f"{namespace}-n0", "factor": 3})
    assert code == 400
    assert "fault.factor" in body["error"]
    code, body = sim.post_fault({"type": "nodeFailure", "node": "elsewhere"})
    assert code == 400
    assert "fault.node: no node named 'elsewhere'" in body["error"]
    code, body = sim.post_fault({"type": "earthquake"})
    assert code == 400
    assert "fault.type" in body["error"]
    assert json.loads(json.dumps(sim.faults())) == []
