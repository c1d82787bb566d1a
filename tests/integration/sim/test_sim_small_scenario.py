"""The shipped demo scenario (examples/scenarios/small.yaml), unchanged: drain one node through VMIMs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster

pytestmark = pytest.mark.integration

SMALL = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "small.yaml"


def test_small_scenario_drains_a_node(devcluster: DevCluster, run_sim: Callable[..., Any]) -> None:
    doc = yaml.safe_load(SMALL.read_text())
    sim = run_sim(doc, time_scale=60, name="small")
    vmis = json.loads(devcluster.kubectl("get", "vmi", "-A", "-o", "json").stdout)["items"]
    ours = {(v["namespace"], v["name"]) for v in doc["vmis"]}
    on_node = [
        v
        for v in vmis
        if (v["metadata"]["namespace"], v["metadata"]["name"]) in ours and v["status"]["nodeName"] == "node-01"
    ]
    migratable = [
        v
        for v in on_node
        if {c["type"]: c["status"] for c in v["status"]["conditions"]}.get("LiveMigratable") == "True"
    ]
    assert len(migratable) >= 5
    names = []
    for v in migratable:
        ns, name = v["metadata"]["namespace"], v["metadata"]["name"]
        manifest = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstanceMigration",
            "metadata": {"generateName": f"drain-{name}-", "namespace": ns},
            "spec": {"vmiName": name},
        }
        created = devcluster.kubectl("create", "-f", "-", "-o", "name", input=yaml.safe_dump(manifest))
        names.append((ns, created.stdout.strip()))
    for ns, ref in names:
        devcluster.kubectl("wait", "-n", ns, ref, "--for=jsonpath={.status.phase}=Succeeded", "--timeout=50s")
    records = sim.wait_outcomes(len(migratable))
    assert all(r["source"] == "node-01" and r["target"] != "node-01" for r in records)
    cache = [r for r in records if r["vmi"].startswith("staging/cache-")]
    assert len(cache) == 3  # staging/cache-0017, -0033 and -0049 live on node-01
    assert {r["technique"] for r in cache} == {"auto-converge"}
    after = json.loads(devcluster.kubectl("get", "vmi", "-A", "-o", "json").stdout)["items"]
    left = [
        v["metadata"]["name"]
        for v in after
        if (v["metadata"]["namespace"], v["metadata"]["name"]) in ours and v["status"]["nodeName"] == "node-01"
    ]
    assert len(left) == len(on_node) - len(migratable)
