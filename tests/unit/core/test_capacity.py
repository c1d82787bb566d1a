"""The capacity rule: virt-launcher requests term by term (KubeVirt's renderresources.go), the node's fit, the
snapshot fields that feed them, and the shipped scenario's consolidation admitted by requests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from livemig.core.capacity import (
    Requests,
    launcher_requests,
    memory_overhead_bytes,
    memory_request_bytes,
    request_refusal,
    requested_on,
)
from livemig.core.cluster import LauncherSizing
from livemig.core.errors import SpecErrors
from livemig.core.planning import ConsolidationSpec, ModelCosts, PlanningSpec, plan_consolidation
from livemig.core.snapshot_parser import load_snapshot, parse_snapshot
from livemig.core.vocabulary import Purpose

MI = 2**20
GI = 2**30
SMALL = Path(__file__).parents[3] / "examples" / "scenarios" / "small.yaml"


def snap(vmi: dict[str, Any] | None = None, kubevirt: dict[str, Any] | None = None, **node: Any) -> Any:
    doc: dict[str, Any] = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "nodes": [{"name": "n1", "cpu": 8, "memory": "32Gi", **node}],
        "vmis": [{"namespace": "ns", "name": "vm", "node": "n1", "vcpus": 1, "memory": "1Gi", **(vmi or {})}],
    }
    if kubevirt is not None:
        doc["kubevirt"] = kubevirt
    return parse_snapshot(doc)


def only_vmi(**kw: Any) -> Any:
    s = snap(kw.pop("vmi", None), kw.pop("kubevirt", None))
    return s.vmis[0], s.launcher


# -- memory request (before the overhead)


def test_memory_request_is_the_guest_memory_by_default() -> None:
    vmi, sizing = only_vmi()
    assert memory_request_bytes(vmi, sizing) == GI


def test_memory_overcommit_divides_the_guest_memory() -> None:
    vmi, sizing = only_vmi(kubevirt={"memoryOvercommit": 150})
    assert sizing.memory_overcommit_percent == 150
    assert memory_request_bytes(vmi, sizing) == GI * 100 // 150


def test_the_vmis_own_memory_request_wins_over_overcommit() -> None:
    vmi, sizing = only_vmi(vmi={"requests": {"memory": "512Mi"}}, kubevirt={"memoryOvercommit": 150})
    assert memory_request_bytes(vmi, sizing) == 512 * MI


# -- memory overhead, one term at a time


def test_overhead_of_a_one_vcpu_vmi_is_kubevirts_fixed_terms_plus_page_tables() -> None:
    vmi, sizing = only_vmi()
    fixed = (25 + 100 + 20 + 40 + 30) * MI + 8 * MI + 8 * MI + 16 * MI  # processes, 1 vCPU, IO thread, video RAM
    assert memory_overhead_bytes(vmi, sizing) == pytest.approx(fixed + GI / 512)


def test_page_tables_grow_with_the_memory_request() -> None:
    small, sizing = only_vmi()
    big, _ = only_vmi(vmi={"memory": "9Gi"})
    assert memory_overhead_bytes(big, sizing) - memory_overhead_bytes(small, sizing) == pytest.approx(8 * GI / 512)


def test_page_tables_follow_the_overcommitted_request() -> None:
    vmi, sizing = only_vmi(vmi={"memory": "8Gi"})
    over = replace(sizing, memory_overcommit_percent=200)
    assert memory_overhead_bytes(vmi, sizing) - memory_overhead_bytes(vmi, over) == pytest.approx(4 * GI / 512)


def test_each_vcpu_adds_8mi() -> None:
    one, sizing = only_vmi()
    four, _ = only_vmi(vmi={"vcpus": 4})
    assert memory_overhead_bytes(four, sizing) - memory_overhead_bytes(one, sizing) == 3 * 8 * MI


def test_additional_overhead_ratio_multiplies_the_overhead() -> None:
    vmi, sizing = only_vmi(kubevirt={"additionalGuestMemoryOverheadRatio": "1.5"})
    assert memory_overhead_bytes(vmi, sizing) == pytest.approx(1.5 * memory_overhead_bytes(vmi, LauncherSizing()))


def test_launcher_memory_is_request_plus_overhead_unless_the_overhead_is_overcommitted() -> None:
    vmi, sizing = only_vmi()
    assert launcher_requests(vmi, sizing).memory_bytes == pytest.approx(GI + memory_overhead_bytes(vmi, sizing))
    lean, _ = only_vmi(vmi={"overcommitGuestOverhead": True})
    assert launcher_requests(lean, sizing).memory_bytes == GI


# -- CPU


def test_cpu_is_vcpus_over_the_allocation_ratio() -> None:
    vmi, sizing = only_vmi(vmi={"vcpus": 4})
    assert launcher_requests(vmi, sizing).cpu_cores == pytest.approx(0.4)
    vmi, sizing = only_vmi(vmi={"vcpus": 4}, kubevirt={"cpuAllocationRatio": 2})
    assert launcher_requests(vmi, sizing).cpu_cores == pytest.approx(2.0)


def test_the_vmis_own_cpu_request_wins() -> None:
    vmi, sizing = only_vmi(vmi={"vcpus": 4, "requests": {"cpu": "1500m"}})
    assert launcher_requests(vmi, sizing).cpu_cores == pytest.approx(1.5)


# -- the node's fit


def test_node_admits_up_to_allocatable_and_refuses_beyond() -> None:
    s = snap()
    node = s.nodes[0]
    full = Requests(node.cpu_cores - 1, node.memory_bytes - GI)
    assert request_refusal(node, full, Requests(1, GI)) is None
    assert request_refusal(node, full, Requests(1, GI + 1)) == "insufficient memory"
    assert request_refusal(node, full, Requests(1.001, GI)) == "insufficient cpu"


def test_other_pods_requests_count_on_the_node() -> None:
    s = snap(otherRequests={"cpu": "500m", "memory": "2Gi"})
    node, vmi = s.nodes[0], s.vmis[0]
    on = requested_on(node, [vmi], s.launcher)
    assert on.cpu_cores == pytest.approx(0.5 + 0.1)
    assert on.memory_bytes == pytest.approx(2 * GI + launcher_requests(vmi, s.launcher).memory_bytes)


@pytest.mark.parametrize(
    ("kubevirt", "where"),
    [
        ({"memoryOvercommit": 5}, "kubevirt.memoryOvercommit"),
        ({"cpuAllocationRatio": 0}, "kubevirt.cpuAllocationRatio"),
        ({"additionalGuestMemoryOverheadRatio": "0.5"}, "kubevirt.additionalGuestMemoryOverheadRatio"),
        ({"additionalGuestMemoryOverheadRatio": "lots"}, "kubevirt.additionalGuestMemoryOverheadRatio"),
    ],
)
def test_bad_sizing_settings_name_their_field(kubevirt: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecErrors) as err:
        snap(kubevirt=kubevirt)
    assert [e.path for e in err.value.errors] == [where]


def test_small_scenario_consolidation_fits_by_requests() -> None:
    """Issue 13: sized by usage alone, this plan filled node-03 to 103 % and node-04 to 108 % of allocatable
    memory by requests, so kube-scheduler would have left those target pods Pending."""
    s = load_snapshot(SMALL)
    spec = PlanningSpec(
        purpose=Purpose.CONSOLIDATION,
        consolidation=ConsolidationSpec(headroom_cpu=0.1, headroom_memory=0.1, low_cpu=0.6, low_memory=0.6),
    )
    plan = plan_consolidation(s, spec, ModelCosts.for_spec(spec.technique, s.kubevirt))
    assert plan.moves, plan.reason
    # Every pod a node holds during the plan: its own VMIs' (their pods stay until migrated) and every target pod.
    pods: dict[str, list[Any]] = {n.name: [v for v in s.vmis if v.node == n.name] for n in s.nodes}
    vmis = {v.key: v for v in s.vmis}
    for m in plan.moves:
        pods[m.target].append(vmis[m.vmi])
    for node in s.nodes:
        requested = requested_on(node, pods[node.name], s.launcher)
        assert requested.memory_bytes <= node.memory_bytes, f"{node.name} memory over allocatable by requests"
        assert requested.cpu_cores <= node.cpu_cores, f"{node.name} CPU over allocatable by requests"


def test_a_misspelt_sizing_setting_is_an_unknown_field_listing_the_sizing_keys() -> None:
    with pytest.raises(SpecErrors) as err:
        snap(kubevirt={"memoryOvercomit": 150})
    (error,) = err.value.errors
    assert error.path == "kubevirt.memoryOvercomit"
    assert "memoryOvercommit" in error.problem
