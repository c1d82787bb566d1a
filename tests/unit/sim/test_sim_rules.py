"""KubeVirt's migration rules: phase order, caps, GC, admission."""

from __future__ import annotations

import pytest

from livemig.sim import rules
from livemig.sim.rules import FinalizedView, MigrationView, Phase


def test_success_path_order_and_failed_from_any_non_final() -> None:
    phase = Phase.UNSET
    walked = []
    while not phase.is_final:
        phase = rules.next_phase(phase)
        walked.append(phase)
    assert tuple(walked) == rules.PHASE_ORDER
    for p in (Phase.UNSET, *rules.PHASE_ORDER[:-1]):
        assert rules.transition_allowed(p, Phase.FAILED)
    assert not rules.transition_allowed(Phase.SUCCEEDED, Phase.FAILED)
    assert not rules.transition_allowed(Phase.PENDING, Phase.SCHEDULED)
    with pytest.raises(ValueError, match="final"):
        rules.next_phase(Phase.FAILED)


def test_is_running_is_kubevirts() -> None:
    assert {p for p in Phase if p.is_running} == {
        Phase.SCHEDULING,
        Phase.SCHEDULED,
        Phase.PREPARING_TARGET,
        Phase.TARGET_READY,
        Phase.RUNNING,
    }


def test_phase_timestamp_only_at_first_entry() -> None:
    stamps = rules.add_phase_timestamp([], Phase.PENDING, "t1")
    stamps = rules.add_phase_timestamp(stamps, Phase.PENDING, "t2")
    stamps = rules.add_phase_timestamp(stamps, Phase.SCHEDULING, "t3")
    assert stamps == [
        {"phase": "Pending", "phaseTransitionTimestamp": "t1"},
        {"phase": "Scheduling", "phaseTransitionTimestamp": "t3"},
    ]


def _m(
    key: str, node: str, phase: Phase = Phase.PENDING, pod: bool = False, prio: str = "", t: float = 0
) -> MigrationView:
    return MigrationView(key, f"ns/{key}", phase, node, pod, prio, t)


def test_caps_cluster_and_per_node() -> None:
    migs = [_m(f"m{i}", f"n{i % 4}", t=i) for i in range(12)]
    admitted = rules.admit_pending(migs, cluster_cap=5, node_cap=2)
    assert len(admitted) == 5
    per_node: dict[str, int] = {}
    for a in admitted:
        per_node[a.source_node] = per_node.get(a.source_node, 0) + 1
    assert max(per_node.values()) <= 2


def test_pending_with_target_pod_counts_as_running() -> None:
    migs = [_m("a", "n1", Phase.PENDING, pod=True), _m("b", "n1", Phase.RUNNING), _m("c", "n1")]
    assert rules.admit_pending(migs, cluster_cap=5, node_cap=2) == []
    assert [m.key for m in rules.admit_pending(migs, cluster_cap=5, node_cap=3)] == ["c"]
    assert rules.admit_pending(migs, cluster_cap=2, node_cap=9) == []


def test_node_cap_is_per_source_node() -> None:
    migs = [_m("a", "n1", Phase.RUNNING), _m("b", "n1", Phase.RUNNING), _m("c", "n1", t=1), _m("d", "n2", t=2)]
    assert [m.key for m in rules.admit_pending(migs, 5, 2)] == ["d"]


def test_priority_orders_the_queue() -> None:
    migs = [
        _m("user", "n1", prio="user-triggered", t=0),
        _m("crit", "n2", prio="system-critical", t=5),
        _m("none", "n3", t=1),
    ]
    assert [m.key for m in rules.admit_pending(migs, 2, 2)] == ["crit", "user"]


def test_final_migrations_do_not_count() -> None:
    migs = [_m("a", "n1", Phase.SUCCEEDED), _m("b", "n1", Phase.FAILED), _m("c", "n1")]
    assert [m.key for m in rules.admit_pending(migs, 1, 1)] == ["c"]


def test_target_pod_timeouts() -> None:
    assert not rules.target_pod_timed_out(0, True, 299)
    assert rules.target_pod_timed_out(0, True, 300)
    assert not rules.target_pod_timed_out(0, False, 899)
    assert rules.target_pod_timed_out(0, False, 900)


def test_gc_keeps_five_newest_per_vmi() -> None:
    items = [FinalizedView(f"a{i}", "ns/a", final_at=i, created_at=i) for i in range(8)]
    items += [FinalizedView(f"b{i}", "ns/b", final_at=i, created_at=i) for i in range(5)]
    assert rules.finalized_to_delete(items) == ["a0", "a1", "a2"]


VMI = {
    "metadata": {"name": "vm"},
    "status": {"phase": "Running", "conditions": [{"type": "LiveMigratable", "status": "True"}]},
}
VMIM = {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"vmiName": "vm"}}


def test_admission_accepts_a_first_migration() -> None:
    assert rules.admit_migration_create(VMIM, VMI, [], "alice") is None


@pytest.mark.parametrize(
    ("vmim", "vmi", "others", "message", "code"),
    [
        ({**VMIM, "spec": {}}, VMI, [], "vmiName is missing", 422),
        (VMIM, None, [], 'the VMI "ns/vm" does not exist', 400),
        (VMIM, {"status": {"phase": "Succeeded"}}, [], "Cannot migrate VMI in finalized state.", 400),
        (
            VMIM,
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {
                            "type": "LiveMigratable",
                            "status": "False",
                            "reason": "DisksNotLiveMigratable",
                            "message": "PVC x is not shared",
                        }
                    ],
                }
            },
            [],
            "Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: PVC x is not shared",
            400,
        ),
        (
            VMIM,
            VMI,
            [{"metadata": {"uid": "u-1"}, "spec": {"vmiName": "vm"}, "status": {"phase": "Running"}}],
            "in-flight migration detected. Active migration job (u-1) is currently already in progress for VMI vm.",
            400,
        ),
        (
            {**VMIM, "spec": {"vmiName": "vm", "priority": "system-critical"}},
            VMI,
            [],
            "MigrationPriorityQueue feature gate is not enabled in kubevirt resource",
            422,
        ),
    ],
)
def test_admission_rejections(vmim: dict, vmi: dict | None, others: list, message: str, code: int) -> None:
    denial = rules.admit_migration_create(vmim, vmi, others, "alice")
    assert denial is not None
    assert denial.message == message
    assert denial.code == code


def test_admission_ignores_finished_migrations_and_lets_kubevirt_set_priority_with_the_gate_on() -> None:
    done = [{"metadata": {"uid": "u"}, "status": {"phase": p}} for p in ("Succeeded", "Failed")]
    assert rules.admit_migration_create(VMIM, VMI, done, "alice") is None
    prio = {**VMIM, "spec": {"vmiName": "vm", "priority": "system-critical"}}
    controller = "system:serviceaccount:kubevirt:kubevirt-controller"
    # Gate off (KubeVirt's default up to v1.8): nobody may set it, not even virt-controller.
    refused = rules.admit_migration_create(prio, VMI, [], controller)
    assert refused is not None
    assert refused.field == "spec.migrationPriority"
    assert rules.admit_migration_create(prio, VMI, [], controller, priority_queue=True) is None
    user = rules.admit_migration_create(prio, VMI, [], "alice", priority_queue=True)
    assert user is not None
    assert user.message == "Migration priority queue, only virt-controller is allowed to set priority field"
    assert user.code == 422


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ({"completionTimeoutPerGiB": -1}, ("spec.completionTimeoutPerGiB",)),
        ({"bandwidthPerMigration": "-1Mi"}, ("spec.bandwidthPerMigration",)),
        (
            {"bandwidthPerMigration": -5, "completionTimeoutPerGiB": -1},
            ("spec.completionTimeoutPerGiB", "spec.bandwidthPerMigration"),
        ),
        ({"bandwidthPerMigration": "64Mi", "completionTimeoutPerGiB": 0}, ()),
        ({"bandwidthPerMigration": "-0"}, ()),
    ],
)
def test_kubevirt_migration_policy_admitter_refuses_negative_values(spec: dict, fields: tuple[str, ...]) -> None:
    denial = rules.admit_migration_policy({"spec": spec})
    if not fields:
        assert denial is None
        return
    assert denial is not None
    assert denial.fields == fields
    assert denial.code == 422
    assert denial.message == ", ".join("must not be negative" for _ in fields)


def test_priority_queue_gate_is_on_only_from_v1_7_and_only_when_listed() -> None:
    from livemig.core.kubevirt import KubevirtVersion

    gates = ["MigrationPriorityQueue"]
    assert not KubevirtVersion(8).priority_queue_enabled([])
    assert KubevirtVersion(8).priority_queue_enabled(gates)
    assert KubevirtVersion(7).priority_queue_enabled(gates)
    assert not KubevirtVersion(6).priority_queue_enabled(gates)


def test_gate_off_queue_order_ignores_priority_and_is_reproducible() -> None:
    migs = [
        rules.MigrationView(f"m{i}", f"v{i}", rules.Phase.PENDING, "n1", priority="system-critical" if i == 7 else "")
        for i in range(12)
    ]
    first = [m.key for m in rules.pending_in_queue_order(migs, prioritized=False, shuffle_seed="s:1")]
    again = [m.key for m in rules.pending_in_queue_order(migs, prioritized=False, shuffle_seed="s:1")]
    other = [m.key for m in rules.pending_in_queue_order(migs, prioritized=False, shuffle_seed="s:2")]
    assert first == again
    assert sorted(first) == sorted(m.key for m in migs)
    assert first != other  # arbitrary: another moment, another order
    assert next(m.key for m in rules.pending_in_queue_order(migs)) == "m7"  # gate on: priority first
    assert rules.requeue_delay_s("system-critical", prioritized=False) == 5.0
    assert rules.requeue_delay_s("system-critical", prioritized=True) == 1.0


def test_update_admission() -> None:
    old = {**VMIM, "metadata": {"labels": {rules.VMI_NAME_LABEL: "vm"}}}
    assert rules.admit_migration_update({**old, "spec": {"vmiName": "other"}}, old).message == (  # type: ignore[union-attr]
        "update of Migration object's spec is restricted"
    )
    assert rules.admit_migration_update({**old, "metadata": {"labels": {}}}, old) is not None
    assert rules.admit_migration_update({**old, "metadata": {}}, old) is not None
    assert rules.admit_migration_update(old, old) is None
    done = {**old, "metadata": {}, "status": {"phase": "Succeeded"}}
    assert rules.admit_migration_update(done, old) is None


def test_mutation_adds_label_and_finalizer() -> None:
    ops = rules.mutate_migration_create({"metadata": {"labels": {"x": "y"}}, "spec": {"vmiName": "vm"}})
    assert {"op": "add", "path": "/metadata/labels", "value": {"x": "y", rules.VMI_NAME_LABEL: "vm"}} in ops
    assert {"op": "add", "path": "/metadata/finalizers", "value": [rules.MIGRATION_FINALIZER]} in ops


def test_mutator_prunes_added_node_selector_only_where_the_version_lacks_it() -> None:
    vmim = {"metadata": {}, "spec": {"vmiName": "vm", "addedNodeSelector": {"pool": "x"}}}
    remove = {"op": "remove", "path": "/spec/addedNodeSelector"}
    assert remove in rules.mutate_migration_create(vmim, added_node_selector_supported=False)
    assert remove not in rules.mutate_migration_create(vmim)
    assert remove not in rules.mutate_migration_create(
        {"metadata": {}, "spec": {"vmiName": "vm"}}, added_node_selector_supported=False
    )
