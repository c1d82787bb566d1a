"""Issue 14 rows of docs/simulator.md's fidelity table, against the real API server: what an operator reads to know
which KubeVirt it drives and how a migration went."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

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


def _events(devcluster: DevCluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    out = devcluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    items = json.loads(out)["items"]
    # In the order they were written: etcd's revision (resourceVersion) grows with each write.
    ordered = sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(e["type"], e["reason"], e["message"]) for e in ordered]


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)  # polling the API server for a condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


def test_abort_after_handoff_goes_on_until_running(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    """migration.go: a VMIM deleted after the hand-off only gets the `migrationAbortRequested` condition; in Running
    the controller sets the VMI's `abortRequested` and virt-handler cancels ("Live migration aborted ")."""
    ns = namespace
    doc = scenario(ns, [vm("big", 0, memory="16Gi", dirty="50Mi")], link="1Gbit")
    doc["simulation"]["delays"] = {"jitter": 0, "targetReady": "40s"}
    run_sim(doc, time_scale=10)
    assert create_vmim(devcluster, ns, "m-1", "big").returncode == 0
    wait_phase(devcluster, ns, "m-1", "PreparingTarget")
    devcluster.kubectl("delete", "-n", ns, "vmim", "m-1", "--wait=false")

    def abort_marked() -> dict[str, Any] | None:
        current = get(devcluster, ns, "vmim", "m-1")
        conditions = current["status"].get("conditions") or []
        return current if any(c["type"] == "migrationAbortRequested" for c in conditions) else None

    marked = _wait(abort_marked, "the abort condition")
    assert marked["status"]["phase"] in ("PreparingTarget", "TargetReady", "Running")  # not failed at once
    _wait(lambda: devcluster.kubectl("get", "-n", ns, "vmim", "m-1", check=False).returncode != 0, "VMIM gone")
    ms = get(devcluster, ns, "vmi", "big")["status"]["migrationState"]
    assert ms["startTimestamp"]  # it went on to Running before the abort
    assert ms["abortRequested"] is True
    assert ms["abortStatus"] == "Succeeded"
    assert ms["failureReason"] == "Live migration aborted "
    assert ("Normal", "SuccessfulAbortMigration", "Migration is ready to be canceled by virt-handler.") in _events(
        devcluster, ns, "m-1"
    )


def test_admission_answers_with_kubevirts_codes(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    """webhookutils: a bad field is 422 Invalid with the field in the causes; a refusal about state is 400."""
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0)]))
    missing = create_vmim(devcluster, ns, "m-missing", "nope")
    # 400 without a reason: kubectl prints no "(Reason)" after "Error from server"
    assert missing.stderr.startswith("Error from server: "), missing.stderr
    assert f'the VMI "{ns}/nope" does not exist' in missing.stderr
    prio = create_vmim(devcluster, ns, "m-prio", "vm-a", priority="system-critical")
    # 422 Invalid with the field in the causes: kubectl prints "The request is invalid: <field>: <message>"
    assert prio.stderr.startswith(
        "The request is invalid: spec.migrationPriority: "
        "MigrationPriorityQueue feature gate is not enabled in kubevirt resource"
    ), prio.stderr


def test_priority_queue_gate_on_lets_only_virt_controller_set_priority(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0)], kubevirt={"featureGates": ["MigrationPriorityQueue"]}))
    kv = get(devcluster, ns, "kubevirt", "kubevirt")
    assert kv["spec"]["configuration"]["developerConfiguration"]["featureGates"] == ["MigrationPriorityQueue"]
    manifest = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": "m-prio", "namespace": ns},
        "spec": {"vmiName": "vm-a", "priority": "system-critical"},
    }
    # Another user than the simulator (which plays virt-controller), with every permission.
    as_user = ("--as=alice", "--as-group=system:masters")
    prio = devcluster.kubectl("create", *as_user, "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert prio.returncode != 0
    assert "Migration priority queue, only virt-controller is allowed to set priority field" in prio.stderr


def test_kubevirt_migration_policy_webhook_refuses_negative_values(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    run_sim(scenario(namespace, [vm("vm-a", 0)]))
    policy = {
        "apiVersion": "migrations.kubevirt.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": f"{namespace}-negative"},
        "spec": {"selectors": {}, "completionTimeoutPerGiB": -1, "bandwidthPerMigration": "-1Mi"},
    }
    # KubeVirt's CRD accepts both (no minimum, a signed quantity); its admitter refuses them, naming each field.
    refused = devcluster.kubectl("create", "-f", "-", input=yaml.safe_dump(policy), check=False)
    assert refused.returncode != 0
    assert "The request is invalid" in refused.stderr
    assert "spec.completionTimeoutPerGiB: must not be negative" in refused.stderr
    assert "spec.bandwidthPerMigration: must not be negative" in refused.stderr
    policy["spec"] = {"selectors": {}, "completionTimeoutPerGiB": 0, "bandwidthPerMigration": "0"}
    devcluster.kubectl("create", "-f", "-", input=yaml.safe_dump(policy))
    devcluster.kubectl("delete", "migrationpolicies.migrations.kubevirt.io", f"{namespace}-negative")


def test_a_vmi_not_running_keeps_its_vmim_pending_and_a_deleted_vmi_has_its_vmims_deleted(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0), vm("vm-b", 0), vm("vm-c", 1)], nodes=3), time_scale=10)
    # KubeVirt's VMI has no status subresource (virt-handler updates the whole object): a plain patch sets it.
    devcluster.kubectl(
        "patch", "-n", ns, "vmi", "vm-a", "--type=merge", "-p",
        json.dumps({"status": {"phase": "Scheduled"}}),
    )  # fmt: skip
    assert create_vmim(devcluster, ns, "waits", "vm-a").returncode == 0
    # A whole migration of another VMI from the same node runs meanwhile; the first stays Pending throughout.
    assert create_vmim(devcluster, ns, "other", "vm-b").returncode == 0
    wait_phase(devcluster, ns, "other", "Succeeded")
    assert get(devcluster, ns, "vmim", "waits")["status"]["phase"] == "Pending"
    devcluster.kubectl(
        "patch", "-n", ns, "vmi", "vm-a", "--type=merge", "-p",
        json.dumps({"status": {"phase": "Running"}}),
    )  # fmt: skip
    wait_phase(devcluster, ns, "waits", "Succeeded")

    # A deleted VMI: its finished VMIM is deleted by KubeVirt's controller.
    assert create_vmim(devcluster, ns, "c-1", "vm-c").returncode == 0
    wait_phase(devcluster, ns, "c-1", "Succeeded")
    devcluster.kubectl("delete", "-n", ns, "vmi", "vm-c")
    _wait(lambda: devcluster.kubectl("get", "-n", ns, "vmim", "c-1", check=False).returncode != 0, "c-1 deleted")


def test_unschedulable_target_pod_gives_kubevirts_events_and_failure(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    """handlePendingPodTimeout, shortened by KubeVirt's own test annotation (10 s instead of 300 s)."""
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0, nodeSelector={"pool": "nowhere"})], nodes=2), time_scale=5)
    manifest = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {
            "name": "m-1",
            "namespace": ns,
            "annotations": {"kubevirt.io/migrationUnschedulablePodTimeoutSeconds": "10"},
        },
        "spec": {"vmiName": "vm-a"},
    }
    devcluster.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest))
    wait_phase(devcluster, ns, "m-1", "Failed")
    events = _events(devcluster, ns, "m-1")
    reasons = [reason for _, reason, _ in events]
    assert (
        "Warning",
        "migrationTargetPodUnschedulable",
        f"Migration target pod for VMI [{ns}/vm-a] is currently unschedulable.",
    ) in events
    assert any(
        r == "SuccessfulDelete" and "unschedulable pod" in m and "timeout period exceeded" in m for _, r, m in events
    )
    assert ("Warning", "FailedMigration", "Migration target pod was removed during active migration.") in events
    assert reasons.index("migrationTargetPodUnschedulable") < reasons.index("FailedMigration")
