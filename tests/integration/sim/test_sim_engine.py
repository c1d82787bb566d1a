"""The simulator against the real API server: objects, admission, phases, caps, policies, timeouts, faults, GC."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from livemig.devcluster import DevCluster

pytestmark = pytest.mark.integration

RUNNING_PHASES = {"Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running"}
ORDER = ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]


def vm(name: str, node: int, *, memory: str = "4Gi", dirty: str = "10Mi", **extra: Any) -> dict[str, Any]:
    return {"name": name, "node": node, "memory": memory, "dirty": dirty, **extra}


def scenario(
    ns: str,
    vmis: list[dict[str, Any]],
    *,
    nodes: int = 4,
    kubevirt: dict[str, Any] | None = None,
    policies: list[dict[str, Any]] | None = None,
    faults: list[dict[str, Any]] | None = None,
    link: str = "10Gbit",
) -> dict[str, Any]:
    """A scenario whose nodes, KubeVirt CR and VMIs belong to this test's namespace only."""
    vmi_docs = []
    for v in vmis:
        doc: dict[str, Any] = {
            "namespace": ns,
            "name": v["name"],
            "node": f"{ns}-n{v['node']}",
            "vcpus": 2,
            "memory": v["memory"],
            "labels": v.get("labels", {"app": "web"}),
            "usage": {"cpu": "1", "memory": v["memory"], "dirtyRate": v["dirty"]},
        }
        for key in ("liveMigratable", "affinity", "tolerations", "nodeSelector"):
            if key in v:
                doc[key] = v[key]
        vmi_docs.append(doc)
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "kubevirt": kubevirt or {},
        "namespaces": [{"name": ns, "labels": {"tier": "test"}}],
        "nodes": [{"name": f"{ns}-n{i}", "cpu": "32", "memory": "128Gi", "linkBandwidth": link} for i in range(nodes)],
        "vmis": vmi_docs,
        "kubevirtPolicies": policies or [],
        "faults": faults or [],
        "simulation": {"kubevirtNamespace": ns, "delays": {"jitter": 0}},
    }


def create_vmim(devcluster: DevCluster, ns: str, name: str, vmi: str, **spec: Any) -> Any:
    manifest = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"vmiName": vmi, **spec},
    }
    return devcluster.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest), check=False)


def wait_phase(devcluster: DevCluster, ns: str, name: str, phase: str, timeout: str = "50s") -> None:
    devcluster.kubectl(
        "wait", "-n", ns, f"vmim/{name}", f"--for=jsonpath={{.status.phase}}={phase}", f"--timeout={timeout}"
    )


def get(devcluster: DevCluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    out = devcluster.kubectl("get", "-n", ns, kind, name, "-o", "json").stdout
    return dict(json.loads(out))


def test_objects_phases_in_order_and_vmi_status(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    sim = run_sim(scenario(ns, [vm("vm-a", 0), vm("vm-b", 1, liveMigratable=False)]))
    node = json.loads(devcluster.kubectl("get", "node", f"{ns}-n0", "-o", "json").stdout)
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    assert node["status"]["allocatable"]["cpu"] == "32"
    kv = get(devcluster, ns, "kubevirt", "kubevirt")
    assert kv["spec"]["configuration"]["migrations"]["parallelMigrationsPerCluster"] == 5
    vmi = get(devcluster, ns, "vmi", "vm-a")
    assert vmi["status"]["phase"] == "Running"
    assert vmi["status"]["nodeName"] == f"{ns}-n0"
    assert {c["type"]: c["status"] for c in vmi["status"]["conditions"]}["LiveMigratable"] == "True"

    result = create_vmim(devcluster, ns, "mig-1", "vm-a")
    assert result.returncode == 0, result.stderr
    wait_phase(devcluster, ns, "mig-1", "Succeeded")
    vmim = get(devcluster, ns, "vmim", "mig-1")
    assert [t["phase"] for t in vmim["status"]["phaseTransitionTimestamps"]] == ORDER
    stamps = [t["phaseTransitionTimestamp"] for t in vmim["status"]["phaseTransitionTimestamps"]]
    assert stamps == sorted(stamps)
    assert vmim["metadata"]["labels"]["kubevirt.io/vmi-name"] == "vm-a"
    assert "kubevirt.io/migrationJobFinalize" not in vmim["metadata"].get("finalizers", [])
    vmi = get(devcluster, ns, "vmi", "vm-a")
    state = vmi["status"]["migrationState"]
    target = state["targetNode"]
    assert target != f"{ns}-n0"
    assert vmi["status"]["nodeName"] == target
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == target
    assert "kubevirt.io/migrationTargetNodeName" not in vmi["metadata"]["labels"]  # removed once final
    assert state["completed"] is True
    assert state["failed"] is False
    assert state["mode"] == "PreCopy"
    assert state["sourceNode"] == f"{ns}-n0"
    assert state["migrationUid"] == vmim["metadata"]["uid"]
    assert state["startTimestamp"] <= state["endTimestamp"]
    assert vmim["status"]["migrationState"]["targetNode"] == target
    events = json.loads(
        devcluster.kubectl(
            "get", "events", "-n", ns, "--field-selector", "involvedObject.name=mig-1", "-o", "json"
        ).stdout
    )["items"]
    assert {"SuccessfulCreate", "SuccessfulHandOver", "SuccessfulMigration"} <= {e["reason"] for e in events}
    (record,) = sim.wait_outcomes(1)
    assert record["vmim"] == f"{ns}/mig-1"
    assert record["result"] == "Succeeded"
    assert record["target"] == target
    assert record["technique"] == "pre-copy"
    assert record["simulated"]["transferred_bytes"] >= 4 * 2**30
    assert record["predicted"]["total_time_s"] > 0


def test_admission_rejects_what_kubevirt_rejects(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    run_sim(
        scenario(ns, [vm("vm-a", 0, memory="8Gi", dirty="100Mi"), vm("vm-b", 1, liveMigratable=False)], link="1Gbit")
    )
    missing = create_vmim(devcluster, ns, "m-missing", "nope")
    assert missing.returncode != 0
    assert f'the VMI "{ns}/nope" does not exist' in missing.stderr
    stuck = create_vmim(devcluster, ns, "m-stuck", "vm-b")
    assert stuck.returncode != 0
    assert "Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: PVC vm-b-root is not shared" in stuck.stderr
    prio = create_vmim(devcluster, ns, "m-prio", "vm-a", priority="system-critical")
    assert prio.returncode != 0
    # KubeVirt up to v1.8 has MigrationPriorityQueue off: nobody may set spec.priority (422, the field named).
    assert "MigrationPriorityQueue feature gate is not enabled in kubevirt resource" in prio.stderr
    first = create_vmim(devcluster, ns, "m-1", "vm-a")
    assert first.returncode == 0, first.stderr
    uid = get(devcluster, ns, "vmim", "m-1")["metadata"]["uid"]
    second = create_vmim(devcluster, ns, "m-2", "vm-a")
    assert second.returncode != 0
    assert (
        f"in-flight migration detected. Active migration job ({uid}) is currently already in progress for VMI vm-a."
    ) in second.stderr
    change = devcluster.kubectl(
        "patch", "-n", ns, "vmim", "m-1", "--type=merge", "-p", '{"spec":{"vmiName":"vm-b"}}', check=False
    )
    assert change.returncode != 0
    assert "update of Migration object's spec is restricted" in change.stderr
    relabel = devcluster.kubectl(
        "label", "-n", ns, "vmim", "m-1", "kubevirt.io/vmi-name=other", "--overwrite", check=False
    )
    assert relabel.returncode != 0
    assert "selector label can't be modified on an in-flight migration" in relabel.stderr
    wait_phase(devcluster, ns, "m-1", "Succeeded")
    again = create_vmim(devcluster, ns, "m-3", "vm-a")
    assert again.returncode == 0, again.stderr


def running_counts(events: list[dict[str, Any]], source_of: dict[str, str]) -> tuple[int, dict[str, int]]:
    """Peak number of VMIMs in Scheduling..Running (cluster-wide and per source node) over the watched states."""
    phase: dict[str, str] = {}
    peak, node_peak = 0, {}
    for event in events:
        obj = event["object"]
        phase[obj["metadata"]["name"]] = (obj.get("status") or {}).get("phase", "")
        active = [n for n, p in phase.items() if p in RUNNING_PHASES]
        peak = max(peak, len(active))
        per_node: dict[str, int] = {}
        for name in active:
            src = source_of[obj["metadata"]["name"]] if False else source_of[name]
            per_node[src] = per_node.get(src, 0) + 1
        for node, n in per_node.items():
            node_peak[node] = max(node_peak.get(node, 0), n)
    return peak, node_peak


def test_limits_never_exceeded_and_a_kubevirt_cr_change_takes_effect(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any], vmim_watch: Callable[[str], Any]
) -> None:
    ns = namespace
    vms = [vm(f"vm-{i}", i % 3, memory="8Gi", dirty="20Mi") for i in range(9)]
    run_sim(
        scenario(
            ns,
            vms,
            nodes=6,
            link="1Gbit",
            kubevirt={"parallelMigrationsPerCluster": 2, "parallelOutboundMigrationsPerNode": 1},
        )
    )
    watch = vmim_watch(ns)
    for i in range(6):
        assert create_vmim(devcluster, ns, f"m-{i}", f"vm-{i}").returncode == 0
    source_of = {f"m-{i}": f"{ns}-n{i % 3}" for i in range(9)}
    for i in range(6):
        wait_phase(devcluster, ns, f"m-{i}", "Succeeded", timeout="50s")
    peak, node_peak = running_counts(list(watch.events), source_of)
    assert peak == 2, "the cluster cap must be reached and never exceeded"
    assert max(node_peak.values()) == 1
    # raise the caps in the KubeVirt CR: the next migrations run three at once
    devcluster.kubectl(
        "patch",
        "-n",
        ns,
        "kubevirt",
        "kubevirt",
        "--type=merge",
        "-p",
        '{"spec":{"configuration":{"migrations":{"parallelMigrationsPerCluster":3,'
        '"parallelOutboundMigrationsPerNode":3}}}}',
    )
    seen = len(watch.events)
    for i in range(6, 9):
        assert create_vmim(devcluster, ns, f"m-{i}", f"vm-{i}").returncode == 0
    for i in range(6, 9):
        wait_phase(devcluster, ns, f"m-{i}", "Succeeded", timeout="50s")
    later = [e for e in list(watch.events)[seen:] if e["object"]["metadata"]["name"] in {"m-6", "m-7", "m-8"}]
    peak_after, _ = running_counts(later, source_of)
    assert peak_after == 3


POST_COPY_POLICY = {
    "metadata": {"name": "POLICY"},
    "spec": {
        "selectors": {"virtualMachineInstanceSelector": {"technique": "post-copy"}},
        "allowPostCopy": True,
        "completionTimeoutPerGiB": 1,
    },
}


def test_post_copy_switch_and_abort_at_the_completion_timeout(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    policy = {**POST_COPY_POLICY, "metadata": {"name": f"{ns}-post-copy"}}
    vms = [
        vm("pc", 0, memory="8Gi", dirty="1Gi", labels={"technique": "post-copy"}),
        vm("plain", 1, memory="8Gi", dirty="1Gi"),
    ]
    sim = run_sim(
        scenario(ns, vms, link="1Gbit", policies=[policy], kubevirt={"completionTimeoutPerGiB": 1}), time_scale=20
    )
    try:
        assert create_vmim(devcluster, ns, "m-pc", "pc").returncode == 0
        assert create_vmim(devcluster, ns, "m-plain", "plain").returncode == 0
        devcluster.kubectl(
            "wait", "-n", ns, "vmi/pc", "--for=jsonpath={.status.migrationState.mode}=PostCopy", "--timeout=60s"
        )
        wait_phase(devcluster, ns, "m-pc", "Succeeded")
        wait_phase(devcluster, ns, "m-plain", "Failed")
    finally:
        devcluster.kubectl("delete", "migrationpolicy", f"{ns}-post-copy", "--ignore-not-found")
    pc = get(devcluster, ns, "vmi", "pc")["status"]
    assert pc["migrationState"]["mode"] == "PostCopy"
    assert pc["migrationState"]["completed"] is True
    assert pc["migrationState"]["migrationPolicyName"] == f"{ns}-post-copy"
    assert pc["migrationState"]["migrationConfiguration"]["completionTimeoutPerGiB"] == 1
    assert pc["nodeName"] == pc["migrationState"]["targetNode"]
    plain = get(devcluster, ns, "vmi", "plain")["status"]
    assert plain["nodeName"] == f"{ns}-n1"
    state = plain["migrationState"]
    assert state["failed"] is True
    assert state["abortStatus"] == "Succeeded"
    assert state["failureReason"] == "Live migration is not completed after 9 seconds and has been aborted"
    records = {r["vmi"]: r for r in sim.wait_outcomes(2)}
    assert records[f"{ns}/pc"]["outcome"] == "switched-to-post-copy"
    assert records[f"{ns}/pc"]["kubevirtPolicy"] == f"{ns}-post-copy"
    assert records[f"{ns}/plain"]["outcome"] == "aborted"


def test_auto_converge_converges_where_plain_pre_copy_does_not(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    policy = {
        "metadata": {"name": f"{ns}-ac"},
        "spec": {
            "selectors": {"virtualMachineInstanceSelector": {"technique": "auto-converge"}},
            "allowAutoConverge": True,
        },
    }
    # dirtying 200 MiB/s over a 1 Gbit/s link (~119 MiB/s): plain pre-copy cannot finish within KubeVirt's
    # default 150 s/GiB x 5 = 750 s; auto-converge throttles the guest until it does
    vms = [
        vm("ac", 0, memory="4Gi", dirty="200Mi", labels={"technique": "auto-converge"}),
        vm("plain", 1, memory="4Gi", dirty="200Mi"),
    ]
    sim = run_sim(scenario(ns, vms, link="1Gbit", policies=[policy]), time_scale=150)
    try:
        assert create_vmim(devcluster, ns, "m-ac", "ac").returncode == 0
        assert create_vmim(devcluster, ns, "m-plain", "plain").returncode == 0
        wait_phase(devcluster, ns, "m-ac", "Succeeded", timeout="50s")
        wait_phase(devcluster, ns, "m-plain", "Failed", timeout="50s")
    finally:
        devcluster.kubectl("delete", "migrationpolicy", f"{ns}-ac", "--ignore-not-found")
    records = {r["vmi"]: r for r in sim.wait_outcomes(2)}
    assert records[f"{ns}/ac"]["technique"] == "auto-converge"
    assert records[f"{ns}/ac"]["result"] == "Succeeded"
    assert records[f"{ns}/ac"]["simulated"]["max_throttle"] >= 0.2
    assert records[f"{ns}/plain"]["technique"] == "pre-copy"
    assert records[f"{ns}/plain"]["outcome"] == "aborted"


def test_deleting_a_running_migration_aborts_it(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    run_sim(scenario(ns, [vm("big", 0, memory="16Gi", dirty="50Mi")], link="1Gbit"), time_scale=5)
    assert create_vmim(devcluster, ns, "m-1", "big").returncode == 0
    wait_phase(devcluster, ns, "m-1", "Running")
    assert "kubevirt.io/migrationJobFinalize" in get(devcluster, ns, "vmim", "m-1")["metadata"]["finalizers"]
    devcluster.kubectl("delete", "-n", ns, "vmim", "m-1", "--wait=true", "--timeout=60s")
    state = get(devcluster, ns, "vmi", "big")["status"]
    assert state["nodeName"] == f"{ns}-n0"
    ms = state["migrationState"]
    assert ms["abortRequested"] is True
    assert ms["abortStatus"] == "Succeeded"
    assert ms["failed"] is True
    assert "completed" not in ms  # v1.8: only success sets it (v1.5 set it on failure too)
    assert ms["failureReason"] == "Live migration aborted "  # sic: KubeVirt's text ends with a space


def test_finalized_migrations_beyond_five_per_vmi_are_deleted(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    run_sim(scenario(ns, [vm("vm-a", 0, memory="1Gi"), vm("vm-b", 1, memory="1Gi")], nodes=2))
    for i in range(7):
        assert create_vmim(devcluster, ns, f"a-{i}", "vm-a").returncode == 0
        wait_phase(devcluster, ns, f"a-{i}", "Succeeded")
    assert create_vmim(devcluster, ns, "b-0", "vm-b").returncode == 0
    wait_phase(devcluster, ns, "b-0", "Succeeded")
    for name in ("a-0", "a-1"):
        devcluster.kubectl("wait", "-n", ns, f"vmim/{name}", "--for=delete", "--timeout=60s")
    names = devcluster.kubectl("get", "vmim", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert sorted(names) == ["a-2", "a-3", "a-4", "a-5", "a-6", "b-0"]


def test_cordon_and_taints_set_through_the_api_steer_the_target(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    toleration = [{"key": "maintenance", "operator": "Equal", "value": "now", "effect": "NoSchedule"}]
    vms = [
        vm("vm-a", 0, affinity=anti),
        vm("vm-b", 3, tolerations=toleration),
        vm("filler", 4, memory="64Gi", labels={"app": "batch"}),  # makes n4 the most allocated node
    ]
    sim = run_sim(scenario(ns, vms, nodes=5))
    spec = get(devcluster, ns, "vmi", "vm-a")["spec"]
    assert spec["affinity"] == anti
    assert get(devcluster, ns, "vmi", "vm-b")["spec"]["tolerations"] == toleration
    assert sim.state()["nodesTainted"] == []
    devcluster.kubectl("cordon", f"{ns}-n1")
    devcluster.kubectl("taint", "node", f"{ns}-n2", "maintenance=now:NoSchedule")
    # the simulator learns of node changes through its watch: wait until it has (watches are not ordered
    # against each other, so the VMIM could otherwise be seen first)
    deadline = time.monotonic() + 30
    while (state := sim.state())["nodesCordoned"] != [f"{ns}-n1"] or state["nodesTainted"] != [f"{ns}-n2"]:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)  # bounded poll of the control endpoint
    assert create_vmim(devcluster, ns, "m-1", "vm-a").returncode == 0
    wait_phase(devcluster, ns, "m-1", "Succeeded")
    # n1 cordoned, n2 tainted, n3 (least allocated) holds vm-b (app=web, anti-affinity): n4 is the only place left
    assert get(devcluster, ns, "vmi", "vm-a")["status"]["nodeName"] == f"{ns}-n4"


def test_a_restart_after_a_crash_replaces_the_stale_webhooks(
    devcluster: DevCluster, namespace: str, run_sim: Callable[..., Any]
) -> None:
    ns = namespace
    doc = scenario(ns, [vm("vm-a", 0)])
    first = run_sim(doc, name="first")
    first.process.kill()  # no clean-up: its webhook registrations stay behind, unreachable
    first.process.wait(timeout=10)
    blocked = create_vmim(devcluster, ns, "m-0", "vm-a")
    assert blocked.returncode != 0
    assert "failed calling webhook" in blocked.stderr
    second = run_sim(doc, name="second")
    assert second.ready["webhookConfiguration"] == first.ready["webhookConfiguration"]
    assert create_vmim(devcluster, ns, "m-1", "vm-a").returncode == 0
    wait_phase(devcluster, ns, "m-1", "Succeeded")
