"""From API objects and metrics to the planners' snapshot (core.inventory): what is placed where, what may move,
bandwidth per node, and garbage left out instead of crashing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from livemig.core.inventory import (
    Assumptions,
    ClusterObjects,
    NodeMetrics,
    VmiMetrics,
    build_snapshot,
    measured_bandwidth,
)

NOW = 1_800_000_000.0


def node(name: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}, "annotations": {}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "128Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    for key, value in extra.items():
        doc[key] = value
    return doc


def vmi(name: str, on: str, *, migratable: str = "True", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "prod", "labels": {"app": "web"}, "annotations": {}},
        "spec": {"domain": {"cpu": {"cores": 2}, "memory": {"guest": "4Gi"}}, "evictionStrategy": "LiveMigrate"},
        "status": {
            "phase": "Running",
            "nodeName": on,
            "conditions": [{"type": "LiveMigratable", "status": migratable}],
            **status,
        },
    }


def objects(
    nodes: list[dict[str, Any]], vmis: list[dict[str, Any]], vmims: list[dict[str, Any]] = ()
) -> ClusterObjects:  # type: ignore[assignment]
    return ClusterObjects(
        nodes=nodes,
        namespaces=[{"metadata": {"name": "prod", "labels": {"tier": "prod"}}}],
        vmis=vmis,
        vmims=list(vmims),
    )


def test_nodes_and_vmis_become_the_snapshot_with_metrics() -> None:
    inv = build_snapshot(
        objects([node("n1"), node("n2", spec={"unschedulable": True})], [vmi("a", "n1")]),
        NOW,
        {"n1": NodeMetrics(cpu_utilization=0.5, memory_utilization=0.25, cpu_pressure=0.1)},
        {"prod/a": VmiMetrics(cpu_cores=1.5, memory_bytes=2**31, dirty_rate_bps=3e6)},
    )
    snap = inv.snapshot
    assert snap.time_s == NOW
    n1, n2 = snap.node("n1"), snap.node("n2")
    assert n1.cpu_cores == 32
    assert n1.cpu_used_cores == 16.0
    assert n1.memory_used_bytes == 32 * 2**30
    assert n1.pressure.cpu == pytest.approx(0.1)
    assert not n2.schedulable
    a = snap.vmis[0]
    assert (a.key, a.node, a.vcpus, a.memory_bytes) == ("prod/a", "n1", 2, 4 * 2**30)
    assert (a.cpu_cores, a.memory_used_bytes, a.dirty_rate_bps) == (1.5, 2**31, 3e6)
    assert a.live_migratable
    assert snap.namespace_labels("prod") == {"tier": "prod"}


def test_what_may_not_move_is_kept_for_its_load_but_marked() -> None:
    vmim = {
        "metadata": {"name": "m", "namespace": "prod"},
        "spec": {"vmiName": "moving", "addedNodeSelector": {"kubernetes.io/hostname": "n2"}},
        "status": {"phase": "Running"},
    }
    vmis = [
        vmi("moving", "n1"),
        vmi("evacuating", "n1", evacuationNodeName="n1"),
        vmi("pinned", "n1", migratable="False"),
        vmi("stopped", "n1", phase="Succeeded"),
    ]
    inv = build_snapshot(objects([node("n1"), node("n2")], vmis, [vmim]), NOW)
    by_key = {v.key: v for v in inv.snapshot.vmis}
    assert "prod/stopped" not in by_key, "not Running: no load, nothing to move"
    assert by_key["prod/moving"].node == "n2", "an in-flight VMI counts on its target"
    assert inv.busy == {"prod/moving", "prod/evacuating"}
    assert inv.immovable == {"prod/pinned"}
    assert not any(by_key[k].live_migratable for k in ("prod/moving", "prod/evacuating", "prod/pinned"))


def test_bandwidth_annotation_then_measured_then_default() -> None:
    annotated = node("n1")
    annotated["metadata"]["annotations"]["livemig.io/migration-bandwidth"] = "25Gbit"
    finished = {
        "metadata": {"name": "m", "namespace": "prod"},
        "spec": {"vmiName": "a"},
        "status": {
            "phase": "Succeeded",
            "migrationState": {
                "sourceNode": "n2",
                "startTimestamp": "2026-01-01T00:00:00Z",
                "endTimestamp": "2026-01-01T00:00:16Z",
            },
        },
    }

    def build(used: float | None) -> Any:
        return build_snapshot(
            objects([annotated, node("n2"), node("n3")], [vmi("a", "n3")], [finished]),
            NOW,
            vmi_metrics={"prod/a": VmiMetrics(memory_bytes=used)},
            assumptions=Assumptions(default_bandwidth_bps=1e9),
        )

    inv = build(4 * 2**30)  # a guest using all its 4 GiB
    assert inv.snapshot.node("n1").link_bandwidth_bps == 25e9 / 8
    assert inv.snapshot.node("n2").link_bandwidth_bps == pytest.approx(4 * 2**30 / 17)  # 16 s shown: under 17 s
    assert inv.snapshot.node("n3").link_bandwidth_bps == 1e9
    assert inv.bandwidth_source == {"n1": "annotation", "n2": "measured", "n3": "default"}
    # A guest using 1 GiB of its 4 sent 1 GiB and markers for the rest: its memory over the duration would overstate
    # the link 4 times.
    assert build(2**30).snapshot.node("n2").link_bandwidth_bps == pytest.approx(2**30 / 17)
    # Without a memory sample, what it sent is unknown: not measured.
    unknown = build(None)
    assert unknown.bandwidth_source["n2"] == "default"
    assert unknown.snapshot.node("n2").link_bandwidth_bps == 1e9


def test_measured_bandwidth_averages_the_newest_successful_migrations_only() -> None:
    def done(phase: str, seconds: int, i: int) -> dict[str, Any]:
        return {
            "metadata": {"namespace": "p"},
            "spec": {"vmiName": "v"},
            "status": {
                "phase": phase,
                "migrationState": {
                    "sourceNode": "n",
                    "startTimestamp": f"2026-01-01T00:{i:02d}:00Z",
                    "endTimestamp": f"2026-01-01T00:{i:02d}:{seconds:02d}Z",
                },
            },
        }

    samples = [done("Succeeded", 10, 1), done("Failed", 30, 2), done("Succeeded", 20, 3), done("Succeeded", 2, 4)]
    rates = measured_bandwidth(samples, {"p/v": 100})
    # 10 s and 20 s shown: under 11 s and 21 s
    assert rates == {"n": pytest.approx((100 / 11 + 100 / 21) / 2)}, "failed and too-short migrations are left out"


def test_unknown_dirty_rate_is_assumed_from_the_link_and_reported() -> None:
    inv = build_snapshot(objects([node("n1")], [vmi("a", "n1")]), NOW, assumptions=Assumptions(1e9, 0.25))
    assert inv.snapshot.vmis[0].dirty_rate_bps == 0.25e9
    assert inv.missing_dirty_rates == {"prod/a"}


@pytest.mark.parametrize(
    "garbage",
    [
        {"spec": {"domain": {"memory": {"guest": "lots"}}}},
        {"spec": {"domain": {"cpu": {"cores": "many"}, "memory": {"guest": "1e400"}}}},
        {"spec": {"domain": {}}},
        {"spec": {"domain": {"cpu": {"cores": 2**32 - 1, "sockets": 2**32 - 1}, "memory": {"guest": "4Gi"}}}},
        {"spec": {"domain": {"cpu": {"cores": 1}, "memory": {"guest": "999999999Ei"}}}},
        {"spec": {"evictionStrategy": "Sometimes", "domain": {"memory": {"guest": "4Gi"}}}},
        {"spec": {"affinity": {"podAffinity": {}}, "domain": {"memory": {"guest": "4Gi"}}}},
    ],
)
def test_garbage_in_a_vmi_leaves_that_vmi_out_and_says_so(garbage: dict[str, Any]) -> None:
    bad = vmi("bad", "n1")
    bad["spec"] = garbage["spec"]
    inv = build_snapshot(objects([node("n1")], [vmi("good", "n1"), bad]), NOW)
    assert [v.key for v in inv.snapshot.vmis] == ["prod/good"]
    assert any("prod/bad" in s for s in inv.skipped), inv.skipped


def test_garbage_in_nodes_history_and_the_kubevirt_cr_is_survived() -> None:
    broken = node("n2")
    broken["status"] = {"allocatable": {"cpu": "-3", "memory": "x"}}
    noname = {"metadata": {}}
    a = vmi("a", "n1")
    a["metadata"]["annotations"]["livemig.io/migrations"] = json.dumps([{"m": "x", "t": NOW - 5}, "junk", {"t": 1}])
    b = vmi("b", "n1")
    b["metadata"]["annotations"]["livemig.io/migrations"] = "{not json"
    kubevirt = {"spec": {"configuration": {"migrations": {"parallelMigrationsPerCluster": -1}}}}
    inv = build_snapshot(
        ClusterObjects(nodes=[node("n1"), broken, noname], vmis=[a, b, vmi("c", "n2")], kubevirt=kubevirt), NOW
    )
    assert [n.name for n in inv.snapshot.nodes] == ["n1"]
    assert [v.key for v in inv.snapshot.vmis] == ["prod/a", "prod/b"], "VMIs on a dropped node go with it"
    assert inv.snapshot.vmis[0].migrations_s == (NOW - 5,)
    assert inv.snapshot.vmis[1].migrations_s == ()
    assert inv.snapshot.kubevirt.parallel_migrations_per_cluster == 5, "KubeVirt's default when the CR is bad"
    assert any("KubeVirt CR" in s for s in inv.skipped)


def test_requests_and_kubevirts_sizing_settings_reach_the_snapshot() -> None:
    a = vmi("a", "n1")
    a["spec"]["domain"]["resources"] = {"requests": {"cpu": "1500m", "memory": "3Gi"}, "overcommitGuestOverhead": True}
    configuration = {
        "developerConfiguration": {"memoryOvercommit": 150, "cpuAllocationRatio": 4},
        "additionalGuestMemoryOverheadRatio": "1.2",
    }
    inv = build_snapshot(
        ClusterObjects(
            nodes=[node("n1")], vmis=[a, vmi("b", "n1")], kubevirt={"spec": {"configuration": configuration}}
        ),
        NOW,
    )
    sizing = inv.snapshot.launcher
    assert (sizing.memory_overcommit_percent, sizing.cpu_allocation_ratio) == (150, 4)
    assert sizing.additional_guest_memory_overhead_ratio == pytest.approx(1.2)
    first, second = inv.snapshot.vmis
    assert (first.cpu_request_cores, first.memory_request_bytes, first.overcommit_guest_overhead) == (
        1.5,
        3 * 2**30,
        True,
    )
    assert (second.cpu_request_cores, second.memory_request_bytes, second.overcommit_guest_overhead) == (
        None,
        None,
        False,
    )


def test_bad_sizing_settings_in_the_kubevirt_cr_fall_back_to_kubevirts_defaults() -> None:
    configuration = {"developerConfiguration": {"memoryOvercommit": "lots", "cpuAllocationRatio": 2}}
    inv = build_snapshot(ClusterObjects(nodes=[node("n1")], kubevirt={"spec": {"configuration": configuration}}), NOW)
    assert (inv.snapshot.launcher.memory_overcommit_percent, inv.snapshot.launcher.cpu_allocation_ratio) == (100, 2)
    assert any("memoryOvercommit" in s for s in inv.skipped)
