"""The benchmarks' references are measured, not written: KubeVirt's evacuation in the simulator, and the lab-judged
technique choice (bench/kubevirt_evacuation.py, bench/lab_choice.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from kubevirt_evacuation import simulate_evacuation
from lab_choice import judge, load_cells
from livemig.core.snapshot_parser import parse_snapshot
from livemig.core.vocabulary import Objective, Technique

GI = 2**30


def snapshot(vmis_on_n0: int, *, vmi_memory: str = "4Gi") -> Any:
    nodes = [{"name": f"n{i}", "cpu": "32", "memory": "128Gi", "linkBandwidth": "10Gbit"} for i in range(3)]
    vmis = [
        {
            "namespace": "ns",
            "name": f"vm{i}",
            "node": "n0",
            "vcpus": 2,
            "memory": vmi_memory,
            "usage": {"cpu": "1", "memory": "2Gi", "dirtyRate": "10Mi"},
        }
        for i in range(vmis_on_n0)
    ]
    return parse_snapshot(
        {"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot", "nodes": nodes, "vmis": vmis}
    )


def test_kubevirts_evacuation_moves_every_vmi_within_its_node_cap_in_simulated_time() -> None:
    evacuation = simulate_evacuation(snapshot(5), ["n0"], seed=1)
    assert evacuation.left == 0
    assert evacuation.failed == 0
    assert evacuation.migrations == 5
    # Two at a time from one node (parallelOutboundMigrationsPerNode), 5 s between the controller's passes, plus the
    # target pods' set-up: longer than five 4 GiB migrations sent at once, shorter than sent one by one with set-up.
    one = 4 * GI / 1.25e9
    assert evacuation.makespan_s > 3 * one
    assert evacuation.makespan_s < 5 * (one + evacuation.setup_s + 5.0)
    assert evacuation.setup_s > 0


def test_a_vmi_no_node_admits_is_given_up_on_not_counted_as_moved() -> None:
    evacuation = simulate_evacuation(snapshot(1, vmi_memory="200Gi"), ["n0"], seed=1)
    assert evacuation.left == 1
    assert evacuation.failed >= 3
    assert evacuation.makespan_s == 0.0


def run(case: str, technique: str, total: float | None, downtime: float | None, **extra: Any) -> str:
    inputs = {
        "technique": technique, "memory_bytes": 268435456, "working_set_bytes": 134217728,
        "dirty_pages_per_s": 2000, "bandwidth_bps": 125e6, "downtime_limit_s": 0.3, "timeout_s": 60.0,
        "post_copy_timeout_per_gib": 1.0, "xbzrle_cache_bytes": 67108864, "pattern": "sequential",
        "bytes_per_page": 8,
    }  # fmt: skip
    status = "completed" if total is not None else "not-converged"
    record = {
        "case": case, "inputs": inputs, "technique": technique, "status": status, "total_time_s": total,
        "downtime_s": downtime, "guest_alive": True if total is not None else None, "postcopy_bytes": 0,
        "max_throttle_pct": 0, "details": {}, **extra,
    }  # fmt: skip
    return json.dumps(record)


def test_the_lab_judgement_uses_the_median_run_and_the_measured_best() -> None:
    lines = [
        run("pre-copy_1G_low", "pre-copy", 1.5, 0.030),
        run("pre-copy_1G_low#1", "pre-copy", 9.0, 0.030),  # one slow outlier among three runs
        run("pre-copy_1G_low#2", "pre-copy", 1.6, 0.030),
        run("auto-converge_1G_low", "auto-converge", 1.0, 0.020),
        run("post-copy_1G_low", "post-copy", None, None),
        run("xbzrle_1G_low", "xbzrle", 0.5, 0.001),  # never a candidate: ignored
    ]
    (cell,) = load_cells(lines)
    assert cell.name == "1G_low"
    assert set(cell.repeated) == {Technique.PRE_COPY, Technique.AUTO_CONVERGE, Technique.POST_COPY}
    assert cell.runs(Objective.MIN_TOTAL_TIME)[Technique.PRE_COPY].total_time_s == 1.6
    j = judge(cell, Objective.MIN_TOTAL_TIME)
    assert j.best is Technique.AUTO_CONVERGE
    # Auto's pick is the model's (pre-copy for this quiet guest); measured 1.6 s against 1.0 s: wrong, regret 1.6.
    assert j.auto is Technique.PRE_COPY
    assert j.regret == pytest.approx(1.6)
    assert not j.ok
