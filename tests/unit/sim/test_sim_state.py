"""The simulated virt-controller/virt-handler (`Simulation`), driven tick by tick in simulated time, no API server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from livemig.core.errors import SpecErrors
from livemig.core.vocabulary import Outcome
from livemig.sim import rules
from livemig.sim.clock import ManualClock
from livemig.sim.faults import parse_fault
from livemig.sim.kvconfig import MigrationConfiguration
from livemig.sim.load import integrate, node_demand
from livemig.sim.rules import Phase
from livemig.sim.scenario import parse_scenario
from livemig.sim.state import Simulation
from livemig.sim.writes import (
    Event,
    NodeLabel,
    NodeReady,
    VmimDeletion,
    VmimFinalizerRemoval,
    VmimStatus,
    VmiPatch,
    Write,
)

GIB = 2**30


def make_sim(
    *,
    jitter: float = 0,
    nodes: int = 4,
    vmis: list[dict[str, Any]] | None = None,
    kubevirt: dict[str, Any] | None = None,
    policies: list[dict[str, Any]] | None = None,
    faults: list[dict[str, Any]] | None = None,
    link: str = "10Gbit",
) -> Simulation:
    doc = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "Scenario",
        "kubevirt": kubevirt or {},
        "namespaces": [{"name": "ns", "labels": {"tier": "prod"}}],
        "nodes": [{"name": f"n{i}", "cpu": "32", "memory": "256Gi", "linkBandwidth": link} for i in range(nodes)],
        "vmis": vmis
        or [
            {
                "namespace": "ns",
                "name": f"vm{i}",
                "node": f"n{i % nodes}",
                "vcpus": 2,
                "memory": "4Gi",
                "usage": {"cpu": "1", "memory": "2Gi", "dirtyRate": "10Mi"},
                "labels": {"app": "web"},
            }
            for i in range(8)
        ],
        "kubevirtPolicies": policies or [],
        "faults": faults or [],
        "simulation": {"delays": {"jitter": jitter}, "seed": 3},
    }
    return Simulation(parse_scenario(doc), epoch_s=1.8e9, seed=1)


def vmim(name: str, vmi: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"}, "spec": {"vmiName": vmi, **spec}}


class Driver:
    """Ticks a Simulation in simulated time and records every write."""

    def __init__(self, sim: Simulation, step: float = 1.0) -> None:
        self.sim = sim
        self.clock = ManualClock()
        self.step = step
        self.writes: list[Write] = []
        self.outcomes: list[dict[str, Any]] = []
        self.running_peaks: list[int] = []
        self.per_node_peaks: dict[str, int] = {}

    @property
    def now(self) -> float:
        return self.clock.now()

    def tick(self) -> None:
        result = self.sim.tick(self.now)
        self.writes += result.writes
        self.outcomes += result.outcomes
        running = [
            m for m in self.sim.migrations.values() if not m.phase.is_final and rules.counts_as_running(m.view())
        ]
        self.running_peaks.append(len(running))
        for node in self.sim.nodes:
            n = sum(1 for m in running if m.source_node == node)
            self.per_node_peaks[node] = max(self.per_node_peaks.get(node, 0), n)
        self.clock.advance(self.step)

    def until(self, predicate: Callable[[], bool], limit_s: float = 20000.0) -> None:
        deadline = self.now + limit_s
        while not predicate():
            assert self.now < deadline, "condition not reached in simulated time"
            self.tick()

    def phases(self, name: str) -> list[str]:
        seen: list[str] = []
        for w in self.writes:
            if isinstance(w, VmimStatus) and w.name == name:
                phase = w.status["phase"]
                if not seen or seen[-1] != phase:
                    seen.append(phase)
        return seen

    def final(self, name: str) -> Phase:
        return self.sim.migrations[f"ns/{name}"].phase

    def done(self, *names: str) -> Callable[[], bool]:
        return lambda: all(self.sim.migrations[f"ns/{n}"].phase.is_final for n in names)


def test_phases_in_order_with_one_timestamp_each_and_vmi_moves() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    assert d.phases("m1") == [p.value for p in rules.PHASE_ORDER]
    m = d.sim.migrations["ns/m1"]
    assert [t["phase"] for t in m.timestamps] == [p.value for p in rules.PHASE_ORDER]
    vmi = d.sim.vmis["ns/vm0"]
    assert vmi.node == m.target_node != "n0"
    assert vmi.labels[rules.NODE_NAME_LABEL] == m.target_node
    last_vmi = [w for w in d.writes if isinstance(w, VmiPatch) and w.name == "vm0"][-1].patch
    assert last_vmi["status"]["nodeName"] == m.target_node
    ms = last_vmi["status"]["migrationState"]
    assert ms["completed"] is True
    assert ms["failed"] is False
    assert ms["mode"] == "PreCopy"
    assert ms["sourceNode"] == "n0"
    assert ms["targetNode"] == m.target_node
    assert "startTimestamp" in ms
    assert "endTimestamp" in ms
    assert ms["migrationUid"] == "uid-m1"
    assert any(isinstance(w, VmimFinalizerRemoval) and w.name == "m1" for w in d.writes)
    reasons = [(w.kind, w.reason) for w in d.writes if isinstance(w, Event)]
    assert reasons == [
        ("VirtualMachineInstanceMigration", "SuccessfulCreate"),
        ("VirtualMachineInstanceMigration", "SuccessfulHandOver"),
        ("VirtualMachineInstance", "PreparingTarget"),
        ("VirtualMachineInstance", "Migrating"),
        ("VirtualMachineInstanceMigration", "SuccessfulMigration"),
        ("VirtualMachineInstance", "Migrated"),
    ]
    (record,) = d.outcomes
    assert record["result"] == "Succeeded"
    assert record["outcome"] == "completed"
    assert record["technique"] == "pre-copy"
    assert record["predicted"]["total_time_s"] == pytest.approx(record["simulated"]["total_time_s"], rel=0.05)


def test_handoff_writes_target_label_and_state_before_running() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.PREPARING_TARGET)
    write = next(w for w in d.writes if isinstance(w, VmiPatch))
    handoff = write.patch
    assert write.replace  # migrationState replaced whole, not merged into the previous migration's
    assert handoff["metadata"]["labels"][rules.TARGET_NODE_LABEL] == d.sim.migrations["ns/m1"].target_node
    assert "startTimestamp" not in handoff["status"]["migrationState"]
    # No policy matched: KubeVirt still records the cluster's configuration, resolved, and no policy name.
    config = handoff["status"]["migrationState"]["migrationConfiguration"]
    assert config["allowWorkloadDisruption"] is False
    assert config["nodeDrainTaintKey"] == "kubevirt.io/drain"
    assert config["parallelMigrationsPerCluster"] == 5
    assert "migrationPolicyName" not in handoff["status"]["migrationState"]


def test_target_node_label_removed_when_final() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    last = [w for w in d.writes if isinstance(w, VmiPatch) and w.name == "vm0"][-1].patch
    assert last["metadata"]["labels"][rules.TARGET_NODE_LABEL] is None
    assert rules.TARGET_NODE_LABEL not in d.sim.vmis["ns/vm0"].labels


@pytest.mark.parametrize(("version", "completed"), [("v1.5", True), ("v1.6", None), ("v1.8.0", None)])
def test_completed_on_failure_per_kubevirt_version(version: str, completed: bool | None) -> None:
    sim = make_sim(
        vmis=[big_vm(dirty="100Mi")], link="1Gbit", kubevirt={"version": version, "completionTimeoutPerGiB": 1}
    )
    d = Driver(sim)
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"), limit_s=600)
    assert d.final("m1") is Phase.FAILED
    ms = [w for w in d.writes if isinstance(w, VmiPatch)][-1].patch["status"]["migrationState"]
    assert ms["failed"] is True
    assert ms.get("completed") is completed


def test_limits_never_exceeded() -> None:
    d = Driver(make_sim(kubevirt={"parallelMigrationsPerCluster": 3, "parallelOutboundMigrationsPerNode": 1}))
    for i in range(8):
        d.sim.on_vmim(vmim(f"m{i}", f"vm{i}"), d.now)
    d.until(d.done(*[f"m{i}" for i in range(8)]))
    assert max(d.running_peaks) == 3
    assert max(d.per_node_peaks.values()) == 1
    assert all(d.final(f"m{i}") is Phase.SUCCEEDED for i in range(8))


def test_a_change_of_the_kubevirt_caps_takes_effect() -> None:
    d = Driver(make_sim(kubevirt={"parallelMigrationsPerCluster": 1}))
    for i in range(4):
        d.sim.on_vmim(vmim(f"m{i}", f"vm{i}"), d.now)
    d.tick()
    d.tick()
    assert max(d.running_peaks) == 1
    d.sim.on_kubevirt_config(
        MigrationConfiguration(parallel_migrations_per_cluster=4, parallel_outbound_migrations_per_node=2)
    )
    d.until(lambda: d.running_peaks[-1] >= 2, limit_s=30)


def test_second_migration_for_the_same_vmi_fails() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.tick()
    d.sim.on_vmim(vmim("m2", "vm0"), d.now)
    d.until(d.done("m1", "m2"))
    assert d.final("m1") is Phase.SUCCEEDED
    assert d.final("m2") is Phase.FAILED
    assert "another migration job is in progress" in (d.sim.migrations["ns/m2"].failure_reason or "")


def big_vm(
    name: str = "big", node: str = "n0", dirty: str = "1Gi", memory: str = "8Gi", **extra: Any
) -> dict[str, Any]:
    return {
        "namespace": "ns",
        "name": name,
        "node": node,
        "vcpus": 4,
        "memory": memory,
        "labels": {"app": "db"},
        "usage": {"cpu": "2", "memory": memory, "dirtyRate": dirty},
        **extra,
    }


def test_completion_timeout_aborts_plain_pre_copy() -> None:
    # 8 GiB at 1 GiB/s dirtying over a 1 Gbit/s link never converges; limit = 2 x ceil(8.59) = 18 s
    d = Driver(make_sim(vmis=[big_vm()], kubevirt={"completionTimeoutPerGiB": 2}, link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"))
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.outcome is Outcome.ABORTED
    assert m.abort_status == "Succeeded"
    assert m.failure_reason == "Live migration is not completed after 18 seconds and has been aborted"
    assert m.last is not None
    assert m.last.elapsed_s == pytest.approx(18, abs=1.01)
    assert d.sim.vmis["ns/big"].node == "n0"
    # The controller's event says only that the source reported it; the reason is on the VMI (migration.go).
    events = {(w.kind, w.reason, w.message) for w in d.writes if isinstance(w, Event)}
    assert ("VirtualMachineInstanceMigration", "FailedMigration", "source node reported migration failed") in events
    assert (
        "VirtualMachineInstance",
        "Migrated",
        "VirtualMachineInstance migration uid uid-m1 failed. reason:"
        "Live migration is not completed after 18 seconds and has been aborted",
    ) in events


def test_post_copy_switch_at_the_completion_timeout() -> None:
    policy = {
        "metadata": {"name": "pc"},
        "spec": {
            "selectors": {"virtualMachineInstanceSelector": {"app": "db"}},
            "allowPostCopy": True,
            "completionTimeoutPerGiB": 2,
        },
    }
    d = Driver(make_sim(vmis=[big_vm()], policies=[policy], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].mode == "PostCopy" or d.sim.migrations["ns/m1"].phase.is_final)
    m = d.sim.migrations["ns/m1"]
    assert m.mode == "PostCopy"
    assert not m.phase.is_final
    assert m.running_since is not None
    assert d.now - m.running_since >= 18
    switched = [
        w for w in d.writes if isinstance(w, VmiPatch) and w.patch["status"]["migrationState"].get("mode") == "PostCopy"
    ]
    assert switched, "the VMI's migrationState.mode must show PostCopy"
    d.until(d.done("m1"))
    assert m.phase is Phase.SUCCEEDED
    assert m.outcome is Outcome.SWITCHED_TO_POST_COPY
    assert m.policy_name == "pc"
    assert m.matched_policy == "pc"
    assert d.outcomes[-1]["kubevirtPolicy"] == "pc"
    assert d.sim.vmis["ns/big"].node == m.target_node


@pytest.mark.parametrize(("per_gib", "dirty", "outcome"), [(8, "100Mi", Outcome.PAUSED), (2, "1Gi", Outcome.ABORTED)])
def test_pause_when_disruption_allowed_without_post_copy(per_gib: int, dirty: str, outcome: Outcome) -> None:
    # 8 GiB over 1 Gbit/s: a pass takes ~69 s; paused at 9 x per_gib s, aborted if not done by twice that
    kubevirt = {"completionTimeoutPerGiB": per_gib, "allowWorkloadDisruption": True}
    d = Driver(make_sim(vmis=[big_vm(dirty=dirty)], kubevirt=kubevirt, link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].mode == "Paused" or d.sim.migrations["ns/m1"].phase.is_final)
    assert d.sim.migrations["ns/m1"].mode == "Paused"
    assert d.sim.vmis["ns/big"].paused
    d.until(d.done("m1"))
    assert d.sim.migrations["ns/m1"].outcome is outcome
    assert not d.sim.vmis["ns/big"].paused


def test_auto_converge_converges_where_plain_pre_copy_does_not() -> None:
    vm = big_vm(dirty="200Mi")  # dirtying faster than a 1 Gbit/s link (125 MB/s) can send
    plain = Driver(make_sim(vmis=[vm], kubevirt={"completionTimeoutPerGiB": 150, "progressTimeout": 150}, link="1Gbit"))
    plain.sim.on_vmim(vmim("m1", "big"), plain.now)
    plain.until(plain.done("m1"))
    assert plain.final("m1") is Phase.FAILED
    assert plain.sim.migrations["ns/m1"].outcome is Outcome.ABORTED

    policy = {"metadata": {"name": "ac"}, "spec": {"selectors": {}, "allowAutoConverge": True}}
    ac = Driver(
        make_sim(
            vmis=[vm],
            kubevirt={"completionTimeoutPerGiB": 150, "progressTimeout": 150},
            policies=[policy],
            link="1Gbit",
        )
    )
    ac.sim.on_vmim(vmim("m1", "big"), ac.now)
    throttles: list[float] = []
    while not ac.sim.migrations["ns/m1"].phase.is_final:
        ac.tick()
        throttles.append(ac.sim.vmis["ns/big"].throttle)
    assert ac.final("m1") is Phase.SUCCEEDED
    assert ac.outcomes[-1]["technique"] == "auto-converge"
    assert max(throttles) >= 0.2, "the guest must have been throttled"
    assert ac.sim.vmis["ns/big"].throttle == 0.0


def test_delete_before_handoff_fails_as_canceled() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.tick()
    d.sim.on_vmim({**vmim("m1", "vm0"), "metadata": {**vmim("m1", "vm0")["metadata"], "deletionTimestamp": "x"}}, d.now)
    d.tick()
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.failure_reason == "Migration failed due to being canceled"
    assert [c["type"] for c in m.conditions] == ["migrationAbortRequested"]
    assert any(isinstance(w, VmimFinalizerRemoval) for w in d.writes)
    assert d.sim.vmis["ns/vm0"].node == "n0"


def test_delete_while_running_aborts() -> None:
    d = Driver(make_sim(vmis=[big_vm(dirty="100Mi")], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.RUNNING)
    d.tick()
    d.sim.on_vmim({**vmim("m1", "big"), "metadata": {**vmim("m1", "big")["metadata"], "deletionTimestamp": "x"}}, d.now)
    d.until(d.done("m1"), limit_s=30)
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.abort_requested
    assert m.abort_status == "Succeeded"
    assert m.failure_reason == "Live migration aborted "  # KubeVirt's text, trailing space included
    ms = [w for w in d.writes if isinstance(w, VmiPatch)][-1].patch["status"]["migrationState"]
    assert ms["abortRequested"] is True
    assert ms["abortStatus"] == "Succeeded"
    assert ms["failed"]
    assert "completed" not in ms  # from v1.6 only success sets it
    assert d.sim.vmis["ns/big"].node == "n0"


def _deleted(name: str, vmi: str) -> dict[str, Any]:
    doc = vmim(name, vmi)
    return {**doc, "metadata": {**doc["metadata"], "deletionTimestamp": "x"}}


def test_delete_after_handoff_marks_the_vmim_and_aborts_only_once_running() -> None:
    d = Driver(make_sim(vmis=[big_vm(dirty="100Mi")], link="1Gbit"), step=0.25)
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.PREPARING_TARGET)
    d.sim.on_vmim(_deleted("m1", "big"), d.now)
    m = d.sim.migrations["ns/m1"]
    assert [c["type"] for c in m.conditions] == ["migrationAbortRequested"]
    d.tick()
    assert m.phase is not Phase.FAILED  # KubeVirt lets it go on past the hand-off
    assert not m.abort_requested
    d.until(lambda: m.phase is Phase.RUNNING or m.phase.is_final)
    assert m.phase is Phase.RUNNING
    d.until(lambda: m.abort_requested or m.phase.is_final)
    d.until(d.done("m1"), limit_s=60)
    assert m.phase is Phase.FAILED
    assert m.abort_status == "Succeeded"
    assert m.failure_reason == "Live migration aborted "
    events = [(w.reason, w.message) for w in d.writes if isinstance(w, Event)]
    assert ("SuccessfulAbortMigration", "Migration is ready to be canceled by virt-handler.") in events
    assert ("Migrating", "VirtualMachineInstance is aborting migration.") in events
    assert d.phases("m1")[-3:] == ["TargetReady", "Running", "Failed"]


def test_delete_after_handoff_of_a_migration_that_completes_first_ends_succeeded() -> None:
    tiny = {**big_vm(dirty="1Mi"), "memory": "256Mi", "usage": {"cpu": "1", "memory": "128Mi", "dirtyRate": "1Mi"}}
    d = Driver(make_sim(vmis=[tiny], link="10Gbit"), step=1.0)
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.PREPARING_TARGET)
    d.sim.on_vmim(_deleted("m1", "big"), d.now)
    d.until(d.done("m1"), limit_s=60)
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.SUCCEEDED
    assert [c["type"] for c in m.conditions] == ["migrationAbortRequested"]


@pytest.mark.parametrize("gate", [False, True])
def test_a_finished_migration_wakes_the_queue_only_with_the_priority_queue_gate(gate: bool) -> None:
    kubevirt: dict[str, Any] = {"parallelMigrationsPerCluster": 1}
    if gate:
        kubevirt["featureGates"] = ["MigrationPriorityQueue"]
    d = Driver(make_sim(kubevirt=kubevirt), step=0.5)
    assert d.sim.priority_queue is gate
    for i in range(3):
        d.sim.on_vmim(vmim(f"m{i}", f"vm{i}"), d.now)
    d.tick()
    first = next(m for m in d.sim.migrations.values() if m.has_target_pod)
    waiting = [m for m in d.sim.migrations.values() if not m.has_target_pod]
    assert len(waiting) == 2
    while not first.phase.is_final:
        before = {m.key: m.requeue_at for m in waiting}
        d.tick()
    ended = first.final_at
    assert ended is not None
    if gate:  # reEnqueueHighestPriorityPendingMigrations: the top N are looked at again at once
        assert sum(m.requeue_at <= ended for m in waiting) == 1  # N = the cluster cap (1 here)
        d.tick()
        assert any(m.has_target_pod and m.pod_pending_since - ended <= 2 * d.step for m in waiting)
    else:  # nothing wakes them: each keeps its own 5 s re-queue
        assert all(m.requeue_at == before[m.key] or m.requeue_at - ended >= 4.5 for m in waiting)
        assert all(m.requeue_at - m.created_at >= 5.0 for m in waiting)


def test_without_the_gate_every_capped_vmim_is_requeued_after_5_s_whatever_its_priority() -> None:
    d = Driver(make_sim(kubevirt={"parallelMigrationsPerCluster": 1}), step=0.5)
    d.sim.on_vmim(vmim("m0", "vm0"), d.now)
    d.sim.on_vmim(vmim("m1", "vm1", priority="system-critical"), d.now)
    d.tick()
    (capped,) = [m for m in d.sim.migrations.values() if not m.has_target_pod]
    assert capped.requeue_at - capped.created_at == 5.0


def test_a_vmi_that_is_not_running_keeps_its_vmim_pending_until_it_runs() -> None:
    d = Driver(make_sim())
    d.sim.on_vmi_phase("ns/vm0", "Scheduled", d.now)
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    for _ in range(30):
        d.tick()
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.PENDING
    assert not m.has_target_pod
    d.sim.on_vmi_phase("ns/vm0", "Running", d.now)
    d.until(d.done("m1"))
    assert m.phase is Phase.SUCCEEDED


def test_a_vmi_shut_down_mid_migration_fails_it_as_kubevirt_words_it() -> None:
    d = Driver(make_sim(vmis=[big_vm(dirty="100Mi")], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.RUNNING)
    d.sim.on_vmi_phase("ns/big", "Succeeded", d.now)
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.failure_reason == "Migration failed vmi shutdown during migration."
    d.sim.on_vmi_phase("ns/big", "Running", d.now)  # never resurrected
    assert d.sim.vmis["ns/big"].phase == "Succeeded"


def test_a_deleted_vmi_has_its_vmims_deleted() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("done", "vm0"), d.now)
    d.until(d.done("done"))
    d.sim.on_vmim(vmim("busy", "vm0"), d.now)
    d.until(lambda: d.sim.migrations["ns/busy"].phase is Phase.SCHEDULING)
    d.sim.on_vmi_gone("ns/vm0", d.now)
    d.tick()
    assert "ns/vm0" not in d.sim.vmis
    assert d.final("busy") is Phase.FAILED
    assert sorted(w.name for w in d.writes if isinstance(w, VmimDeletion)) == ["busy", "done"]


def test_a_vmim_whose_vmi_is_gone_before_it_is_processed_is_deleted_unprocessed() -> None:
    d = Driver(make_sim())
    d.sim.on_vmi_gone("ns/vm0", d.now)
    d.sim.on_vmim(vmim("late", "vm0"), d.now)
    d.tick()
    m = d.sim.migrations["ns/late"]
    assert m.phase is Phase.UNSET  # KubeVirt deletes it and returns: its finalizer keeps it Terminating
    assert [w.name for w in d.writes if isinstance(w, VmimDeletion)] == ["late"]
    assert not any(isinstance(w, VmimFinalizerRemoval) for w in d.writes)


def test_gc_keeps_five_finalized_per_vmi() -> None:
    d = Driver(make_sim(nodes=2))
    for i in range(7):
        d.sim.on_vmim(vmim(f"m{i}", "vm0"), d.now)
        d.until(d.done(f"m{i}"))
        d.tick()
    deleted = sorted(w.name for w in d.writes if isinstance(w, VmimDeletion))
    assert deleted == ["m0", "m1"]


def test_link_failure_in_pre_copy_keeps_the_vm_on_its_source() -> None:
    fault = {"type": "linkFailure", "vmi": "ns/big", "afterMigrationStart": "5s"}
    d = Driver(make_sim(vmis=[big_vm(dirty="100Mi")], faults=[fault], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"))
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.outcome is Outcome.FAILED
    assert not m.vm_lost
    assert d.sim.vmis["ns/big"].node == "n0"
    assert d.sim.vmis["ns/big"].phase == "Running"
    assert d.sim.faults_fired["linkFailure"] == 1
    assert d.sim.vmis_lost == 0


def test_link_failure_in_post_copy_loses_the_vm() -> None:
    policy = {
        "metadata": {"name": "pc"},
        "spec": {"selectors": {}, "allowPostCopy": True, "completionTimeoutPerGiB": 1},
    }
    fault = {"type": "linkFailure", "vmi": "ns/big", "afterMigrationStart": "12s"}  # switch at 9 s
    d = Driver(make_sim(vmis=[big_vm(memory="8Gi")], policies=[policy], faults=[fault], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"))
    m = d.sim.migrations["ns/m1"]
    assert m.phase is Phase.FAILED
    assert m.vm_lost
    assert d.sim.vmis["ns/big"].phase == "Failed"
    assert d.sim.vmis_lost == 1
    last = [w for w in d.writes if isinstance(w, VmiPatch)][-1].patch
    assert last["status"]["phase"] == "Failed"
    assert d.outcomes[-1]["vmLost"] is True


def test_node_failure_fails_its_vmis_and_migrations() -> None:
    fault = {"type": "nodeFailure", "node": "n1", "at": "10s"}
    d = Driver(
        make_sim(
            vmis=[big_vm(dirty="100Mi", node="n1"), big_vm(name="other", node="n2", dirty="1Mi")],
            faults=[fault],
            link="1Gbit",
        )
    )
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"), limit_s=30)
    assert d.final("m1") is Phase.FAILED
    assert d.sim.migrations["ns/m1"].failure_reason == "Migration failed because target pod shutdown during migration"
    # The control plane notices later: NotReady after the 40 s grace period, the VMIs failed only at KubeVirt's
    # 5-minute virt-handler heartbeat timeout (checked once a minute).
    assert d.sim.vmis["ns/big"].phase == "Running"
    d.until(lambda: NodeReady("n1", False) in d.writes, limit_s=60)
    assert 50 <= d.now <= 52
    assert d.sim.vmis["ns/big"].phase == "Running"
    d.until(lambda: d.sim.vmis["ns/big"].phase == "Failed", limit_s=400)
    assert 310 <= d.now <= 371
    assert NodeLabel("n1", "kubevirt.io/schedulable", "false") in d.writes
    reasons = {(w.kind, w.name, w.reason) for w in d.writes if isinstance(w, Event)}
    assert ("Node", "n1", "NodeUnresponsive") in reasons
    assert ("VirtualMachineInstance", "big", "NodeUnresponsive") in reasons
    assert d.sim.vmis["ns/other"].phase == "Running"
    # nothing is scheduled to a failed node afterwards
    d.sim.on_vmim(vmim("m2", "other"), d.now)
    d.until(d.done("m2"))
    assert d.sim.migrations["ns/m2"].target_node != "n1"


def test_a_migration_from_a_failed_node_that_had_not_started_waits_for_the_heartbeat_timeout() -> None:
    fault = {"type": "nodeFailure", "node": "n0", "at": "0s"}
    d = Driver(make_sim(vmis=[big_vm(dirty="1Mi")], faults=[fault]))
    d.tick()
    d.sim.on_vmim(vmim("m1", "big"), d.now)  # the VMI still reads Running: admission lets it through
    d.until(d.done("m1"), limit_s=400)
    m = d.sim.migrations["ns/m1"]
    assert d.phases("m1")[-2:] == ["TargetReady", "Failed"]  # no source virt-handler ever started it
    assert m.failure_reason == "Migration failed vmi shutdown during migration."
    assert m.final_at is not None
    assert m.final_at >= 300


def test_slow_link_slows_the_migration() -> None:
    def duration(faults: list[dict[str, Any]]) -> float:
        d = Driver(make_sim(vmis=[big_vm(dirty="1Mi")], faults=faults, link="10Gbit"))
        d.sim.on_vmim(vmim("m1", "big"), d.now)
        d.until(d.done("m1"))
        assert d.final("m1") is Phase.SUCCEEDED
        last = d.sim.migrations["ns/m1"].last
        assert last is not None
        return last.elapsed_s

    fast = duration([])
    slow = duration([{"type": "slowLink", "node": "n0", "factor": 0.1}])
    assert slow > 5 * fast


def test_the_stepper_sends_a_marker_for_memory_the_guest_does_not_use() -> None:
    """Issue 13 item 6: the guest's used memory reaches the simulator's stepper (as the planners' costs, through
    `livemig.core.guest`): never-written pages cost QEMU a marker in pass 0, so a guest using 2 of its 8 GiB moves
    in well under half the bytes and time of one using all 8."""

    def moved(used: str) -> tuple[float, float]:
        d = Driver(make_sim(vmis=[big_vm(dirty="1Mi", usage={"cpu": "2", "memory": used, "dirtyRate": "1Mi"})]))
        d.sim.on_vmim(vmim("m1", "big"), d.now)
        d.until(d.done("m1"))
        assert d.final("m1") is Phase.SUCCEEDED
        last = d.sim.migrations["ns/m1"].last
        assert last is not None
        return last.transferred_bytes, last.elapsed_s

    full_bytes, full_s = moved("8Gi")
    light_bytes, light_s = moved("2Gi")
    assert full_bytes > 8 * GIB
    assert light_bytes < 0.3 * full_bytes
    assert light_s < 0.5 * full_s


def test_target_refuses_fails_in_preparing_target() -> None:
    faults = [{"type": "targetRefuses", "node": f"n{i}"} for i in range(1, 4)]
    d = Driver(make_sim(faults=faults))
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    assert d.phases("m1")[-2:] == ["PreparingTarget", "Failed"]
    assert d.sim.vmis["ns/vm0"].node == "n0"
    assert d.sim.faults_fired["targetRefuses"] == 1


def test_fault_posted_later_applies_from_then() -> None:
    d = Driver(make_sim(vmis=[big_vm(dirty="100Mi")], link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.RUNNING)
    d.sim.add_fault(parse_fault({"type": "linkFailure", "node": "n0"}, "fault", now_s=d.now))
    d.until(d.done("m1"), limit_s=5)
    assert d.sim.migrations["ns/m1"].outcome is Outcome.FAILED


def test_unschedulable_target_times_out() -> None:
    d = Driver(make_sim(nodes=1, vmis=[big_vm()]))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"), limit_s=400)
    assert d.phases("m1") == ["Pending", "Scheduling", "Failed"]
    assert d.now >= 300
    events = [(w.reason, w.message, w.warning) for w in d.writes if isinstance(w, Event) and w.name == "m1"]
    pod = d.sim._target_pod_name(d.sim.migrations["ns/m1"])
    # KubeVirt's handlePendingPodTimeout: a warning while unschedulable, the pod deleted at 300 s, then the
    # reconcile that finds the pod gone fails the VMIM.
    assert (
        "migrationTargetPodUnschedulable",
        "Migration target pod for VMI [ns/big] is currently unschedulable.",
        True,
    ) in events
    assert ("SuccessfulDelete", f"unschedulable pod ns/{pod} timeout period exceeded", False) in events
    assert events[-1] == ("FailedMigration", "Migration target pod was removed during active migration.", True)


def test_kubevirts_timeout_annotation_shortens_the_unschedulable_wait() -> None:
    d = Driver(make_sim(nodes=1, vmis=[big_vm()]))
    doc = vmim("m1", "big")
    doc["metadata"]["annotations"] = {"kubevirt.io/migrationUnschedulablePodTimeoutSeconds": "20"}
    d.sim.on_vmim(doc, d.now)
    d.until(d.done("m1"), limit_s=60)
    assert 20 <= d.now <= 25


def test_added_node_selector_restricts_the_target() -> None:
    d = Driver(make_sim())
    d.sim.nodes["n3"].spec = d.sim.nodes["n3"].spec.__class__(
        **{
            **{f: getattr(d.sim.nodes["n3"].spec, f) for f in d.sim.nodes["n3"].spec.__dataclass_fields__},
            "labels": {"pool": "x"},
        }
    )
    d.sim.on_vmim(vmim("m1", "vm0", addedNodeSelector={"pool": "x"}), d.now)
    d.until(d.done("m1"))
    assert d.sim.migrations["ns/m1"].target_node == "n3"


def test_added_node_selector_loses_a_key_collision_with_the_vmis_node_selector() -> None:
    pinned = {**big_vm(memory="4Gi", dirty="1Mi"), "nodeSelector": {"pool": "a"}}
    d = Driver(make_sim(vmis=[pinned]))
    for name, pool in (("n0", "a"), ("n1", "b"), ("n2", "a")):
        spec = d.sim.nodes[name].spec
        d.sim.nodes[name].spec = replace(spec, labels={**spec.labels, "pool": pool})
    d.sim.on_vmim(vmim("m1", "big", addedNodeSelector={"pool": "b"}), d.now)
    d.until(d.done("m1"))
    assert d.final("m1") is Phase.SUCCEEDED
    assert d.sim.migrations["ns/m1"].target_node == "n2"  # pool=a, the VMI's own selector, not the added pool=b


def test_added_node_selector_does_not_exist_on_v1_5() -> None:
    d = Driver(make_sim(kubevirt={"version": "v1.5"}))
    d.sim.on_vmim(vmim("m1", "vm0", addedNodeSelector={"kubernetes.io/hostname": "nowhere"}), d.now)
    d.until(d.done("m1"))
    assert d.final("m1") is Phase.SUCCEEDED  # the selector matching no node was pruned, not applied
    assert d.sim.migrations["ns/m1"].added_node_selector == {}


def test_node_counters_follow_the_vms() -> None:
    sim = make_sim()
    integrate(sim, 60.0)
    n0 = sim.nodes["n0"]
    # two VMIs of 1 core each on n0, 60 s at time scale 1
    assert n0.cpu_seconds["user"] == pytest.approx(120.0)
    assert n0.cpu_seconds["idle"] == pytest.approx(30 * 60.0)
    assert sim.vmis["ns/vm0"].cpu_seconds == pytest.approx(60.0)


def test_same_seed_same_run() -> None:
    def run() -> list[tuple[str, Any]]:
        d = Driver(make_sim(jitter=0.3))
        for i in range(4):
            d.sim.on_vmim(vmim(f"m{i}", f"vm{i}"), d.now)
        d.until(d.done(*[f"m{i}" for i in range(4)]))
        return [(o["vmim"], o["finishedAt"]) for o in d.outcomes]

    assert run() == run()


def test_unavailable_backend_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from livemig.sim import backend

    monkeypatch.setattr(backend, "_BACKENDS", {"sim": backend.ModelBackend})  # as without the lab installed
    vm = big_vm(backend="qemu")
    with pytest.raises(SpecErrors) as err:
        make_sim(vmis=[vm])
    assert err.value.errors[0].path == "vmis[0].backend"


def test_measured_node_usage_beyond_its_vms_is_kept_as_base_load() -> None:
    sim = make_sim()
    node = sim.nodes["n0"]
    doc_node = {"name": "n0", "cpu": "32", "memory": "256Gi", "usage": {"cpu": "10", "memory": "100Gi"}}
    from livemig.core.snapshot_parser import parse_snapshot

    snap = parse_snapshot(
        {"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot", "nodes": [doc_node], "vmis": []}
    )
    node.spec = snap.nodes[0]
    # n0 holds vm0 and vm4 (1 core each); the measured 10 cores leave 8 of other load
    assert node_demand(sim, 0.0)["n0"][0] == pytest.approx(10.0)
    sim.vmis["ns/vm0"].node = "n1"
    assert node_demand(sim, 0.0)["n0"][0] == pytest.approx(9.0)


def test_the_tick_size_does_not_change_a_migration() -> None:
    def run(step: float) -> tuple[list[dict[str, str]], dict[str, Any]]:
        d = Driver(make_sim(jitter=0.3, vmis=[big_vm(dirty="50Mi")], link="1Gbit"), step=step)
        d.sim.on_vmim(vmim("m1", "big"), d.now)
        d.until(d.done("m1"))
        return d.sim.migrations["ns/m1"].timestamps, d.outcomes[-1]

    fine_stamps, fine = run(0.25)
    coarse_stamps, coarse = run(7.0)
    assert fine_stamps == coarse_stamps
    assert coarse["startedAt"] == pytest.approx(fine["startedAt"])
    assert coarse["finishedAt"] == pytest.approx(fine["finishedAt"], abs=1.0)
    assert coarse["simulated"]["total_time_s"] == pytest.approx(fine["simulated"]["total_time_s"], rel=0.02)


def test_phase_histogram_and_exported_families() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from livemig.sim.exporter import SimulationCollector

    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    counts = d.sim.phase_histogram.buckets["Succeeded"]
    assert counts[-1] == 1
    registry = CollectorRegistry()
    registry.register(SimulationCollector(d.sim, lambda: d.now))
    text = generate_latest(registry).decode()
    assert 'kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_count{phase="Succeeded"} 1.0' in text
    assert 'kubevirt_vmi_migration_succeeded{namespace="ns",vmi="vm0",vmim="m1"} 1.0' in text
    assert "kubevirt_vmi_migrations_in_running_phase 0.0" in text
    assert 'node_pressure_cpu_waiting_seconds_total{instance="n0",node="n0"}' in text
    assert 'kubevirt_vmi_memory_available_bytes{name="vm0",namespace="ns",node="' in text


def test_gc_orders_by_creation_timestamp_not_by_the_order_seen() -> None:
    d = Driver(make_sim())
    for i in reversed(range(7)):  # a relist may return them in any order
        manifest = vmim(f"old-{i}", "vm0")
        manifest["metadata"]["creationTimestamp"] = f"2026-11-27T12:00:0{i}Z"
        manifest["metadata"]["finalizers"] = []
        manifest["status"] = {"phase": "Succeeded"}
        d.sim.on_vmim(manifest, d.now)
    d.tick()
    assert sorted(w.name for w in d.writes if isinstance(w, VmimDeletion)) == ["old-0", "old-1"]


def test_cordon_and_taints_from_the_api_steer_the_target() -> None:
    d = Driver(make_sim())
    d.sim.on_node("n1", {}, [], cordoned=True)
    d.sim.on_node("n2", {}, [{"key": "maintenance", "value": "x", "effect": "NoSchedule"}], cordoned=False)
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    assert d.sim.migrations["ns/m1"].target_node == "n3"


def test_a_stalled_link_trips_the_progress_timeout() -> None:
    fault = {"type": "slowLink", "node": "n0", "factor": 0, "at": "10s"}
    d = Driver(make_sim(vmis=[big_vm(dirty="10Mi")], faults=[fault], kubevirt={"progressTimeout": 60}, link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"))
    m = d.sim.migrations["ns/m1"]
    assert m.outcome is Outcome.ABORTED
    assert m.abort_status == "Succeeded"
    assert m.failure_reason == "Live migration stuck for 60 seconds and has been aborted"
    assert m.last is not None
    assert m.running_since is not None
    assert m.last.elapsed_s == pytest.approx(10 - m.running_since + 60, abs=2)


def test_a_link_stalled_before_the_migration_starts_trips_the_progress_timeout_too() -> None:
    """`factor: 0` from t = 0: the migration starts on a stalled link (the model is set up at the link's unfaulted
    rate, which it never gets) and KubeVirt's progress timeout aborts it, instead of the simulator raising."""
    fault = {"type": "slowLink", "node": "n0", "factor": 0, "at": "0s"}
    d = Driver(make_sim(vmis=[big_vm(dirty="10Mi")], faults=[fault], kubevirt={"progressTimeout": 60}, link="1Gbit"))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(d.done("m1"))
    m = d.sim.migrations["ns/m1"]
    assert m.outcome is Outcome.ABORTED
    assert m.failure_reason == "Live migration stuck for 60 seconds and has been aborted"
    assert m.last is not None
    assert m.last.transferred_bytes == 0
    assert m.last.elapsed_s == pytest.approx(60, abs=2)


def test_an_overcommitted_node_delays_its_vcpus_and_reports_cpu_pressure() -> None:
    vms = [big_vm(name=f"hot{i}", node="n0", memory="1Gi") for i in range(4)]  # 4 x 2 cores on 4 cores
    sim = make_sim(nodes=2, vmis=vms)
    sim.nodes["n0"].spec = replace(sim.nodes["n0"].spec, cpu_cores=4.0)
    integrate(sim, 10.0)
    hot = sim.vmis["ns/hot0"]
    assert hot.cpu_seconds == pytest.approx(2 * 0.5 * 10)
    assert hot.delay_seconds == pytest.approx(2 * 0.5 * 10)
    assert sim.nodes["n0"].psi["cpu_waiting"] == pytest.approx(0.5 * 10)
    assert sim.nodes["n0"].cpu_seconds["idle"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("version", "name"),
    [("v1.8", "kubevirt_vmi_migration_data_bytes_total"), ("v1.7", "kubevirt_vmi_migration_data_total_bytes")],
)
def test_migration_data_metric_named_as_the_kubevirt_version_names_it(version: str, name: str) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from livemig.sim.exporter import SimulationCollector

    d = Driver(make_sim(vmis=[big_vm(dirty="10Mi")], link="1Gbit", kubevirt={"version": version}))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.RUNNING and d.sim.migrations["ns/m1"].last is not None)
    registry = CollectorRegistry()
    registry.register(SimulationCollector(d.sim, lambda: d.now))
    text = generate_latest(registry).decode()
    assert f'{name}{{name="big",namespace="ns",node="n0"}} 8.589934592e+09' in text
    other = {"kubevirt_vmi_migration_data_bytes_total", "kubevirt_vmi_migration_data_total_bytes"} - {name}
    assert other.pop() not in text


def _exported(d: Driver) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from livemig.sim.exporter import SimulationCollector

    registry = CollectorRegistry()
    registry.register(SimulationCollector(d.sim, lambda: d.now))
    return generate_latest(registry).decode()


@pytest.mark.parametrize(
    ("version", "transfer", "unset"),
    [
        ("v1.5", "kubevirt_vmi_migration_disk_transfer_rate_bytes", False),
        ("v1.6", "kubevirt_vmi_migration_disk_transfer_rate_bytes", True),
        ("v1.7", "kubevirt_vmi_migration_memory_transfer_rate_bytes", True),
        ("v1.8", "kubevirt_vmi_migration_memory_transfer_rate_bytes", True),
    ],
)
def test_metric_names_per_kubevirt_version(version: str, transfer: str, unset: bool) -> None:
    d = Driver(make_sim(vmis=[big_vm(dirty="10Mi")], link="1Gbit", kubevirt={"version": version}))
    d.sim.on_vmim(vmim("m1", "big"), d.now)
    d.until(lambda: d.sim.migrations["ns/m1"].phase is Phase.RUNNING and d.sim.migrations["ns/m1"].last is not None)
    text = _exported(d)
    assert f'{transfer}{{name="big",namespace="ns",node="n0"}}' in text
    assert ("kubevirt_vmi_migrations_in_unset_phase" in text) is unset


def test_phase_histogram_has_kubevirts_buckets() -> None:
    d = Driver(make_sim())
    d.sim.on_vmim(vmim("m1", "vm0"), d.now)
    d.until(d.done("m1"))
    text = _exported(d)
    bounds = [
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_bucket")
        and 'phase="Succeeded"' in line
    ]
    kubevirt = [0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600]
    assert bounds == [str(float(b)) for b in kubevirt] + ["+Inf"]


@pytest.mark.parametrize(("version", "failed_status"), [("v1.8", ""), ("v1.5", "failed")])
def test_per_vmi_start_and_end_series_follow_the_vmis_migration_state(version: str, failed_status: str) -> None:
    """vmistats_collector: one series per VMI from its migrationState (the latest migration), labelled with the node
    the VMI is on now; `status` is "" unless `completed`, so a failed migration reads "" from v1.6."""
    d = Driver(make_sim(nodes=2, kubevirt={"version": version}))
    d.sim.on_vmim(vmim("ok", "vm0"), d.now)
    d.until(d.done("ok"))
    text = _exported(d)
    assert (
        'kubevirt_vmi_migration_end_time_seconds{migration_name="ok",name="vm0",namespace="ns",node="n1",status="succeeded"}'
        in text
    )
    d.sim.add_fault(parse_fault({"type": "targetRefuses", "node": "n0"}, "f"))
    d.sim.on_vmim(vmim("bad", "vm0"), d.now)
    d.until(d.done("bad"))
    text = _exported(d)
    assert 'migration_name="ok"' not in text  # replaced at the next hand-off, as on the VMI
    assert (
        f'kubevirt_vmi_migration_end_time_seconds{{migration_name="bad",name="vm0",namespace="ns",node="n1",status="{failed_status}"}}'
        in text
    )
