"""The cluster snapshot parser: every field, the profiles, `at(t)`, and bad input naming its dotted path."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemig.core.cluster import DEFAULT_LINK_BANDWIDTH_BPS, EvictionStrategy, NodeRule, TaintEffect
from livemig.core.errors import SpecError, SpecErrors
from livemig.core.profiles import Bursts, Constant, Diurnal, Phase, Phases
from livemig.core.snapshot_parser import load_snapshot, parse_snapshot

DATA = Path(__file__).parents[2] / "data" / "snapshots"
GI = 2**30
MI = 2**20
T0 = 1795780800.0  # 2026-11-27T12:00:00Z


def minimal() -> dict[str, Any]:
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "nodes": [{"name": "n1", "cpu": 8, "memory": "32Gi"}, {"name": "n2", "cpu": 8, "memory": "32Gi"}],
        "vmis": [{"namespace": "ns", "name": "vm", "node": "n1", "vcpus": 2, "memory": "4Gi"}],
    }


def problems(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecErrors) as info:
        parse_snapshot(doc)
    return {e.path: e.problem for e in info.value.errors}


def test_small_snapshot_parses_every_field() -> None:
    snap = load_snapshot(DATA / "small.yaml")
    assert snap.time_s == T0
    kv = snap.kubevirt
    assert kv.parallel_migrations_per_cluster == 5
    assert kv.parallel_outbound_migrations_per_node == 2
    assert kv.bandwidth_per_migration_bps == 0
    assert kv.allow_auto_converge is True
    assert kv.allow_post_copy is False
    assert kv.allow_workload_disruption is None  # unset: follows allowPostCopy
    assert kv.allows_workload_disruption is False
    assert [ns.name for ns in snap.namespaces] == ["prod", "dev"]
    assert snap.namespace_labels("prod") == {"tier": "prod"}
    assert snap.namespace_labels("missing") == {}

    n1, n2, n3, n4, n5 = snap.nodes
    assert n1.cpu_cores == 32
    assert n2.cpu_cores == 32
    assert n3.cpu_cores == 32
    assert n1.memory_bytes == 128 * GI
    assert n1.link_bandwidth_bps == 10e9 / 8
    assert n3.link_bandwidth_bps == 25e9 / 8
    assert n4.link_bandwidth_bps == DEFAULT_LINK_BANDWIDTH_BPS
    assert n1.pressure.cpu == 0.1
    assert n1.pressure.io == 0.02
    assert n3.taints[0].key == "dedicated"
    assert n3.taints[0].effect is TaintEffect.NO_SCHEDULE
    assert not n4.schedulable
    assert n4.healthy
    assert not n5.healthy
    assert n5.cpu_used_cores == 3
    assert n5.memory_used_bytes == 20 * GI

    db0 = snap.vmis[0]
    assert db0.key == "prod/db-0"
    assert db0.node == "node-01"
    assert db0.vcpus == 8
    assert db0.memory_bytes == 32 * GI
    assert db0.cpu_cores == 6
    assert db0.memory_used_bytes == 28 * GI
    assert db0.dirty_rate_bps == 200 * MI
    assert db0.working_set_bytes == 4 * GI
    assert db0.node_selector == {"disk": "ssd"}
    (term,) = db0.affinity.pod_anti_affinity
    assert term.topology_key == "kubernetes.io/hostname"
    assert term.selector.matches({"app": "db"})
    assert not term.selector.matches({"app": "web"})
    assert db0.migrations_s == (T0 - 600,)
    gpu = snap.vmis[4]
    assert gpu.cpu_cores == 3.5
    assert gpu.tolerates(n3.taints[0])
    assert not db0.tolerates(n3.taints[0])
    assert gpu.affinity.allows_node(n3)
    assert not gpu.affinity.allows_node(n1)
    legacy = snap.vmis[5]
    assert legacy.eviction_strategy is EvictionStrategy.NONE
    assert not legacy.live_migratable
    assert legacy.cpu_cores == 1
    assert legacy.memory_used_bytes == 2 * GI
    assert legacy.dirty_rate_bps == 0  # defaults


def test_node_usage_is_measured_when_given_else_sum_of_vmis() -> None:
    snap = load_snapshot(DATA / "small.yaml")
    assert snap.node_cpu_used_cores("node-05") == 3  # measured, not 0.5 + 1
    assert snap.node_cpu_used_cores("node-01") == 6 + 2  # db-0 + web-0 at t=0 (diurnal mean at phase 0)
    assert snap.node_memory_used_bytes("node-01") == 28 * GI + 6 * GI


def test_at_reevaluates_profiles_and_shifts_time() -> None:
    snap = load_snapshot(DATA / "small.yaml")
    later = snap.at(6 * 3600.0)  # a quarter of the diurnal period: the peak
    web = next(v for v in later.vmis if v.name == "web-0")
    assert web.cpu_cores == pytest.approx(3.0)
    assert later.time_s == T0 + 6 * 3600
    assert later.usage_time_s == 6 * 3600
    # at() is relative to the profiles' origin, not to the current view
    assert later.at(0).time_s == T0
    batch = next(v for v in snap.at(11 * 60).vmis if v.name == "batch-0")
    assert batch.cpu_cores == 2.0
    burst = next(v for v in snap.at(30).vmis if v.name == "web-0")
    assert burst.dirty_rate_bps == 400 * MI
    calm = next(v for v in snap.at(90).vmis if v.name == "web-0")
    assert calm.dirty_rate_bps == 10 * MI
    # The original is unchanged (frozen values).
    assert next(v for v in snap.vmis if v.name == "web-0").cpu_cores == 2.0


@pytest.mark.parametrize(
    ("profile", "t", "expected"),
    [
        (Constant(3.0), 1e6, 3.0),
        (Phases((Phase(10, 1.0), Phase(5, 2.0))), 9.99, 1.0),
        (Phases((Phase(10, 1.0), Phase(5, 2.0))), 12, 2.0),
        (Phases((Phase(10, 1.0), Phase(5, 2.0))), 100, 2.0),  # last value holds
        (Phases((Phase(10, 1.0), Phase(5, 2.0)), repeat=True), 16, 1.0),
        (Phases((Phase(10, 1.0), Phase(5, 2.0)), repeat=True), -5, 1.0),
        (Diurnal(2.0, 1.0, 100.0), 25, 3.0),
        (Diurnal(2.0, 1.0, 100.0), 75, 1.0),
        (Diurnal(2.0, 1.0, 100.0, phase_s=25.0), 50, 3.0),
        (Diurnal(0.5, 1.0, 100.0), 75, 0.0),  # clamped at zero
        (Bursts(1.0, 9.0, 60.0, 10.0), 0, 9.0),
        (Bursts(1.0, 9.0, 60.0, 10.0), 10, 1.0),
        (Bursts(1.0, 9.0, 60.0, 10.0), 125, 9.0),
    ],
)
def test_profile_values(profile: Any, t: float, expected: float) -> None:
    assert profile.value_at(t) == pytest.approx(expected)
    assert profile.value_at(t) == profile.value_at(t)  # pure


def test_defaults_and_json(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(minimal()))
    snap = load_snapshot(path)
    assert snap.time_s == 0.0
    assert snap.kubevirt.parallel_migrations_per_cluster == 5
    assert snap.kubevirt.completion_timeout_per_gib == 150
    vm = snap.vmis[0]
    assert vm.cpu_cores == 2
    assert vm.memory_used_bytes == 4 * GI
    assert vm.dirty_rate_bps == 0
    assert vm.eviction_strategy is EvictionStrategy.LIVE_MIGRATE
    assert vm.live_migratable


def test_time_defaults_to_newest_migration() -> None:
    doc = minimal()
    doc["vmis"][0]["migrations"] = ["2026-11-27T11:00:00Z", "2026-11-27T12:00:00Z", 5.0]
    snap = parse_snapshot(doc)
    assert snap.time_s == T0
    assert snap.vmis[0].migrations_s == (5.0, T0 - 3600, T0)


def test_allow_workload_disruption_follows_post_copy_unless_set() -> None:
    doc = minimal()
    doc["kubevirt"] = {"allowPostCopy": True}
    assert parse_snapshot(doc).kubevirt.allows_workload_disruption is True
    doc["kubevirt"] = {"allowPostCopy": True, "allowWorkloadDisruption": False}
    assert parse_snapshot(doc).kubevirt.allows_workload_disruption is False
    doc["kubevirt"] = {"bandwidthPerMigration": "64Mi"}
    kv = parse_snapshot(doc).kubevirt
    assert kv.bandwidth_per_migration_bps == 64 * MI
    assert kv.migration_bandwidth_bps(1e9) == 64 * MI
    assert kv.migration_bandwidth_bps(1e6) == 1e6


def test_scenario_kind_and_keys_are_accepted() -> None:
    doc = minimal()
    doc["kind"] = "Scenario"
    doc["simulation"] = {"duration": "1h"}
    doc["faults"] = []
    doc["kubevirtPolicies"] = []
    doc["vmis"][0]["backend"] = "qemu"
    snap = parse_snapshot(doc)
    assert snap.vmis[0].backend == "qemu"


def test_node_affinity_operators_and_match_fields() -> None:
    doc = minimal()
    doc["nodes"][1]["labels"] = {"gen": "5"}
    doc["vmis"][0]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [],
        }
    }
    snap = parse_snapshot(doc)
    aff = snap.vmis[0].affinity
    assert aff.allows_node(snap.node("n1"))  # by name
    assert aff.allows_node(snap.node("n2"))  # gen 5 > 4


BAD_CASES: list[tuple[str, Any, str, str]] = [
    # (what, mutation path, value, expected path, expected problem fragment)
    ("apiVersion", ("apiVersion",), "v1", "apiVersion", "must be livemig.io/v1alpha1"),
    ("kind", ("kind",), "Pod", "kind", "must be one of"),
    ("unknown top key", ("nodez",), [], "nodez", "unknown field"),
    ("node cpu", ("nodes", 0, "cpu"), "lots", "nodes[0].cpu", "CPU quantity"),
    ("node cpu zero", ("nodes", 0, "cpu"), 0, "nodes[0].cpu", "greater than zero"),
    ("node memory", ("nodes", 1, "memory"), "-1Gi", "nodes[1].memory", "negative"),
    ("link", ("nodes", 0, "linkBandwidth"), "fast", "nodes[0].linkBandwidth", "bit rate"),
    (
        "taint effect",
        ("nodes", 0, "taints"),
        [{"key": "k", "effect": "Sometimes"}],
        "nodes[0].taints[0].effect",
        "one of",
    ),
    ("pressure", ("nodes", 0, "pressure"), {"cpu": 1.5}, "nodes[0].pressure.cpu", "between 0 and 1"),
    ("schedulable", ("nodes", 0, "schedulable"), "yes", "nodes[0].schedulable", "true or false"),
    ("node key", ("nodes", 0, "cpus"), 4, "nodes[0].cpus", "unknown field"),
    ("dirty rate", ("vmis", 0, "usage"), {"dirtyRate": "fast"}, "vmis[0].usage.dirtyRate", "quantity like 100Mi"),
    ("vcpus", ("vmis", 0, "vcpus"), 2.5, "vmis[0].vcpus", "integer"),
    ("vmi node", ("vmis", 0, "node"), "n9", "vmis[0].node", "names no node"),
    ("strategy", ("vmis", 0, "evictionStrategy"), "Maybe", "vmis[0].evictionStrategy", "one of"),
    ("migrations", ("vmis", 0, "migrations"), ["yesterday"], "vmis[0].migrations[0]", "RFC 3339"),
    ("working set", ("vmis", 0, "workingSet"), "8Gi", "vmis[0].workingSet", "must not exceed memory"),
    ("backend", ("vmis", 0, "backend"), "xen", "vmis[0].backend", "sim or qemu"),
    (
        "phases",
        ("vmis", 0, "usage"),
        {"cpu": {"phases": [{"duration": "soon", "value": 1}]}},
        "vmis[0].usage.cpu.phases[0].duration",
        "duration",
    ),
    (
        "two profile kinds",
        ("vmis", 0, "usage"),
        {"memory": {"constant": "1Gi", "diurnal": {}}},
        "vmis[0].usage.memory",
        "exactly one",
    ),
    (
        "bursts longer than period",
        ("vmis", 0, "usage"),
        {"dirtyRate": {"bursts": {"base": 0, "peak": "1Gi", "every": "1m", "duration": "2m"}}},
        "vmis[0].usage.dirtyRate.bursts.duration",
        "longer than every",
    ),
    (
        "diurnal missing period",
        ("vmis", 0, "usage"),
        {"cpu": {"diurnal": {"mean": 1, "amplitude": 1}}},
        "vmis[0].usage.cpu.diurnal.period",
        "required",
    ),
    (
        "anti-affinity operator",
        ("vmis", 0, "affinity"),
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "vmis[0].affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
        ".labelSelector.matchExpressions[0].operator",
        "must be one of",
    ),
    (
        "pod affinity unsupported",
        ("vmis", 0, "affinity"),
        {"podAffinity": {}},
        "vmis[0].affinity.podAffinity",
        "unknown",
    ),
    (
        "kubevirt limit",
        ("kubevirt",),
        {"parallelMigrationsPerCluster": 0},
        "kubevirt.parallelMigrationsPerCluster",
        "at least 1",
    ),
    ("kubevirt timeout", ("kubevirt",), {"progressTimeout": "never"}, "kubevirt.progressTimeout", "duration"),
    ("time", ("time",), "noon", "time", "RFC 3339"),
]


@pytest.mark.parametrize(("what", "where", "value", "path", "fragment"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_names_the_field(what: str, where: tuple[Any, ...], value: Any, path: str, fragment: str) -> None:
    doc = copy.deepcopy(minimal())
    target: Any = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    found = problems(doc)
    assert path in found, found
    assert fragment in found[path]


def test_all_errors_are_collected() -> None:
    doc = minimal()
    doc["nodes"][0]["cpu"] = "x"
    doc["nodes"][1]["memory"] = "y"
    doc["vmis"][0]["vcpus"] = 0
    doc["vmis"].append({"namespace": "ns", "name": "vm", "node": "n1", "vcpus": 1, "memory": "1Gi"})
    found = problems(doc)
    assert {"nodes[0].cpu", "nodes[1].memory", "vmis[0].vcpus", "vmis[1].name"} <= found.keys()
    assert "duplicate" in found["vmis[1].name"]
    doc = minimal()
    doc["nodes"][1]["name"] = "n1"
    assert "duplicate node" in problems(doc)["nodes[1].name"]


def test_missing_required_fields() -> None:
    found = problems({"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot", "nodes": [{"name": "n"}],
                      "vmis": [{"name": "v"}]})  # fmt: skip
    assert found["nodes[0].cpu"] == "is required"
    assert found["nodes[0].memory"] == "is required"
    assert found["vmis[0].vcpus"] == "is required"
    assert "vmis[0].node" in found
    assert problems({"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot"})["nodes"].startswith("must be")


def test_load_snapshot_file_problems(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_snapshot(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_snapshot(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(SpecError, match="one mapping"):
        load_snapshot(scalar)


def test_yaml_timestamps_and_roundtrip(tmp_path: Path) -> None:
    doc = minimal()
    path = tmp_path / "snap.yaml"
    path.write_text(yaml.safe_dump(doc) + "time: 2026-11-27T12:00:00Z\n")  # unquoted: YAML makes it a datetime
    assert load_snapshot(path).time_s == T0
    assert math.isfinite(load_snapshot(path).vmis[0].memory_bytes)


def test_node_mismatch_names_the_first_broken_rule() -> None:
    doc = minimal()
    doc["nodes"][1]["taints"] = [{"key": "gpu", "effect": "NoSchedule"}]
    doc["vmis"][0]["nodeSelector"] = {"kubernetes.io/hostname": "n2"}
    snap = parse_snapshot(doc)
    vm, n1, n2 = snap.vmis[0], snap.node("n1"), snap.node("n2")
    assert vm.node_mismatch(n1) == (NodeRule.NODE_SELECTOR, "kubernetes.io/hostname=n2")
    # the scheduler's view adds the hostname label; then the untolerated taint is what stops it
    assert vm.node_mismatch(n2, {"kubernetes.io/hostname": "n2"}) == (NodeRule.TAINT, "gpu=:NoSchedule")
    assert vm.node_mismatch(n1, {"kubernetes.io/hostname": "n1"}) == (
        NodeRule.NODE_SELECTOR,
        "kubernetes.io/hostname=n2",
    )
    doc["vmis"][0]["nodeSelector"] = {}
    assert parse_snapshot(doc).vmis[0].node_mismatch(n1) is None
