"""Issue 14 rows of docs/simulator.md's fidelity table, against the real API server: what an operator reads to know
which KubeVirt it drives and how a migration went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from livemig.devcluster import DevCluster

from .test_sim_engine import create_vmim, get, scenario, vm, wait_phase

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("version", "tag"), [(None, "v1.8.0"), ("v1.5", "v1.5.0")])
def test_kubevirt_cr_publishes_the_observed_kubevirt_version(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any], version: str | None, tag: str
) -> None:
    kubevirt = {} if version is None else {"version": version}
    run_sim(scenario(namespace, [vm("vm-a", 0)], kubevirt=kubevirt))
    kv = get(devcluster, namespace, "kubevirt", "kubevirt")
    assert kv["status"]["observedKubeVirtVersion"] == tag
    assert "version" not in kv["spec"]["configuration"]["migrations"]


@pytest.mark.parametrize(("version", "completed_on_failure"), [("v1.8", None), ("v1.5", True)])
def test_migration_state_replaced_whole_at_handoff_and_completed_only_on_success(
    devcluster: DevCluster,
    namespace: str,
    run_sim: Callable[..., Any],
    version: str,
    completed_on_failure: bool | None,
) -> None:
    """A first migration succeeds (completed, endTimestamp); the second one of the same VMI fails after its hand-off
    (its target refuses). A merge would keep the first's `completed`, `mode`, `startTimestamp`; KubeVirt replaces the
    struct, and from v1.6 does not set `completed` on failure."""
    ns = namespace
    refuse = {"type": "targetRefuses", "node": f"{ns}-n0", "at": "0s"}
    run_sim(scenario(ns, [vm("vm-a", 0)], nodes=2, kubevirt={"version": version}, faults=[refuse]))
    assert create_vmim(devcluster, ns, "first", "vm-a").returncode == 0
    wait_phase(devcluster, ns, "first", "Succeeded")
    first = get(devcluster, ns, "vmi", "vm-a")["status"]["migrationState"]
    assert first["completed"] is True
    assert first["mode"] == "PreCopy"
    # The cluster's configuration is recorded although no KubeVirt MigrationPolicy applied.
    assert first["migrationConfiguration"]["allowWorkloadDisruption"] is False
    assert "migrationPolicyName" not in first

    assert create_vmim(devcluster, ns, "second", "vm-a").returncode == 0
    wait_phase(devcluster, ns, "second", "Failed")
    vmi = get(devcluster, ns, "vmi", "vm-a")
    second = vmi["status"]["migrationState"]
    assert second["migrationUid"] == get(devcluster, ns, "vmim", "second")["metadata"]["uid"]
    assert second["failed"] is True
    assert second.get("completed") is completed_on_failure
    assert "startTimestamp" not in second  # it never started: nothing of the first migration survived
    assert "mode" not in second
    assert second["endTimestamp"] != first["endTimestamp"]
    assert vmi["status"]["nodeName"] == f"{ns}-n1"
    assert "kubevirt.io/migrationTargetNodeName" not in vmi["metadata"]["labels"]


def test_added_node_selector_is_pruned_on_v1_5(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    """v1.5's CRD has no `spec.addedNodeSelector`: the stored VMIM has none and the migration ignores it."""
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0)], nodes=2, kubevirt={"version": "v1.5"}))
    selector = {"kubernetes.io/hostname": "no-such-node"}
    assert create_vmim(devcluster, ns, "m-1", "vm-a", addedNodeSelector=selector).returncode == 0
    assert "addedNodeSelector" not in get(devcluster, ns, "vmim", "m-1")["spec"]
    wait_phase(devcluster, ns, "m-1", "Succeeded")
    assert get(devcluster, ns, "vmi", "vm-a")["status"]["nodeName"] == f"{ns}-n1"
