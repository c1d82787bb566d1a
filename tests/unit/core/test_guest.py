"""What a VMI's measured usage tells the model (issue 13 item 6): never-written memory and the writers' CPU share
reach the planners' costs and the simulator's stepper through one rule, `livemig.core.guest.guest_params`."""

from __future__ import annotations

import pytest

from livemig.core.cluster import KubevirtMigrationConfig
from livemig.core.guest import guest_params
from livemig.core.planning import ModelCosts, TechniqueSpec
from livemig.core.snapshot_parser import parse_snapshot
from livemig.core.vocabulary import Technique

GI = 2**30


def _vmi(vcpus: int = 4, memory: str = "8Gi", usage: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    doc = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "nodes": [{"name": "n1", "cpu": 16, "memory": "64Gi"}],
        "vmis": [
            {"namespace": "prod", "name": "vm", "node": "n1", "vcpus": vcpus, "memory": memory}
            | ({"usage": usage} if usage is not None else {})
        ],
    }
    return parse_snapshot(doc).vmis[0]


def test_used_memory_and_cpu_become_zero_pages_and_the_writers_cpu_share() -> None:
    vmi = _vmi(usage={"cpu": 1, "memory": "2Gi", "dirtyRate": "50Mi"})
    vm = guest_params(
        vmi, dirty_rate_bps=vmi.dirty_rate_bps, cpu_cores=vmi.cpu_cores, memory_used_bytes=vmi.memory_used_bytes
    )
    assert vm.memory_bytes == 8 * GI
    assert vm.zero_bytes == 6 * GI
    assert vm.cpu_utilization == pytest.approx(0.25)
    assert vm.dirty_rate_bps == 50 * 2**20


def test_unknown_usage_gives_the_calibrations_safe_defaults() -> None:
    """The snapshot's defaults (usage = all the memory, all the vCPUs): no zero pages and a CPU-bound writer."""
    vmi = _vmi(usage=None)
    vm = guest_params(vmi, dirty_rate_bps=0.0, cpu_cores=vmi.cpu_cores, memory_used_bytes=vmi.memory_used_bytes)
    assert vm.zero_bytes == 0.0
    assert vm.cpu_utilization == 1.0


def test_out_of_range_usage_is_clamped_not_an_error() -> None:
    """Measured usage can exceed the guest's size (overhead counted in) or read 0 (an idle guest)."""
    vmi = _vmi(usage={"cpu": 9, "memory": "9Gi"})
    vm = guest_params(vmi, dirty_rate_bps=0.0, cpu_cores=vmi.cpu_cores, memory_used_bytes=vmi.memory_used_bytes)
    assert (vm.zero_bytes, vm.cpu_utilization) == (0.0, 1.0)
    idle = guest_params(vmi, dirty_rate_bps=0.0, cpu_cores=0.0, memory_used_bytes=0.0)
    assert idle.zero_bytes == 8 * GI
    assert 0 < idle.cpu_utilization <= 0.05


def test_the_planners_grid_rounds_toward_the_safe_side() -> None:
    vmi = _vmi(usage={"cpu": 1.01, "memory": "2.01Gi"})
    exact = guest_params(vmi, dirty_rate_bps=0.0, cpu_cores=vmi.cpu_cores, memory_used_bytes=vmi.memory_used_bytes)
    grid = guest_params(
        vmi, dirty_rate_bps=0.0, cpu_cores=vmi.cpu_cores, memory_used_bytes=vmi.memory_used_bytes, quantised=True
    )
    assert grid.zero_bytes < exact.zero_bytes  # fewer zero pages: more to send
    assert grid.zero_bytes == pytest.approx(exact.memory_bytes * 47 / 64)
    assert grid.cpu_utilization == pytest.approx(0.3)
    assert grid.cpu_utilization >= exact.cpu_utilization


def test_a_guest_using_little_of_its_memory_costs_the_planners_less_to_move() -> None:
    costs = ModelCosts.for_spec(TechniqueSpec(), KubevirtMigrationConfig())
    full = costs.cost(_vmi(usage={"cpu": 2, "memory": "8Gi", "dirtyRate": "20Mi"}), 10e9 / 8)
    light = costs.cost(_vmi(usage={"cpu": 2, "memory": "2Gi", "dirtyRate": "20Mi"}), 10e9 / 8)
    assert full.technique is light.technique is Technique.PRE_COPY
    assert light.transferred_bytes < 0.5 * full.transferred_bytes
    assert light.total_time_s < full.total_time_s
