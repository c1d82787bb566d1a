"""The operator on the real API server, a real Prometheus and the simulator (issue 10, item 12).

Each test starts its own stack; what it asserts comes from the simulator's outcome log (what really migrated, when,
from where to where) and from the API server's objects, not from what the operator says about itself.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from support.stack_helpers import (
    apply,
    condition,
    max_overlap,
    node,
    policy_status,
    scenario,
    vmi,
    vmims,
    vmis_on,
    wait_until,
)

pytestmark = pytest.mark.integration

DRAINED = "node-01"


def drain_scenario(per_node: int = 6, infra_on_drained: int = 2, version: str | None = None) -> dict[str, Any]:
    """Four nodes; node-01 holds `per_node` prod VMIs (in scope), `infra_on_drained` infra VMIs (out of scope) and
    one prod VMI that cannot live-migrate."""
    nodes = [node(f"node-0{i}") for i in range(1, 5)]
    vmis = [vmi("prod", f"web-{i:02d}", DRAINED) for i in range(per_node)]
    vmis += [vmi("infra", f"dns-{i:02d}", DRAINED) for i in range(infra_on_drained)]
    vmis.append(vmi("prod", "db-00", DRAINED, liveMigratable=False))
    vmis += [vmi("prod", f"app-{i:02d}", f"node-0{2 + i % 3}") for i in range(6)]
    return scenario(nodes, vmis, version=version)


def maintenance_policy(name: str = "drain", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "Maintenance",
        "selector": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}},
        "maintenance": {"nodeNames": [DRAINED]},
        "limits": {"maxConcurrentMigrations": 2, "maxConcurrentMigrationsPerNode": 2, "cooldown": "0s"},
        "interval": "5s",
    }
    body.update(spec)
    return {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": body}


def node_state(stack: Any, policy: str, name: str) -> dict[str, Any]:
    return next((n for n in policy_status(stack, policy).get("nodes") or [] if n.get("name") == name), {})


@pytest.mark.parametrize("version", ["v1.8", "v1.5"])
def test_maintenance_drain_moves_in_scope_vmis_within_limits_and_leaves_nothing_behind(
    start_stack: Any, version: str
) -> None:
    """On the oldest and newest KubeVirt the simulator mimics: v1.5 has no addedNodeSelector (the operator leaves the
    target to the scheduler) and sets `completed` on failure too; the queue gate is off on both."""
    stack = start_stack(drain_scenario(version=version))
    assert stack.sim is not None
    kubevirt = stack.kubectl_json("get", "kubevirts.kubevirt.io", "-A")["items"][0]
    assert kubevirt["status"]["observedKubeVirtVersion"] == f"{version}.0"
    apply(stack, maintenance_policy())
    wait_until(
        lambda: node_state(stack, "drain", DRAINED).get("state") == "Drained", timeout_s=120, what=f"{DRAINED} drained"
    )

    records = stack.sim.outcomes()
    moved = {r["vmi"] for r in records}
    expected = {f"prod/web-{i:02d}" for i in range(6)}
    assert moved == expected, "only the in-scope, migratable VMIs of the drained node move"
    assert all(r["result"] == "Succeeded" and r["source"] == DRAINED for r in records), records
    assert all(r["target"] != DRAINED for r in records)
    # The policy's limit (2 at once) held, counted in the simulator's own times.
    assert max_overlap([(r["createdAt"], r["finishedAt"]) for r in records]) <= 2
    # Out of scope and non-migratable VMIs stayed; the node is cordoned by livemig.
    assert vmis_on(stack, DRAINED) == ["infra/dns-00", "infra/dns-01", "prod/db-00"]
    node_obj = stack.kubectl_json("get", "node", DRAINED)
    assert node_obj["spec"].get("unschedulable") is True
    assert node_obj["metadata"]["annotations"].get("livemig.io/cordoned-by") == "drain"
    # Each move ran with the KubeVirt policy livemig made for it, and the status agrees with the outcome log.
    assert all(r["kubevirtPolicy"] == f"livemig-{r['vmim'].split('/')[1]}" for r in records)
    status = wait_until(
        lambda: (
            (s := policy_status(stack, "drain")).get("counters", {}).get("migrationsSucceeded") == len(records) and s
        ),
        timeout_s=30,
        what="status counters",
    )
    assert status["counters"]["migrationsStarted"] == len(records)
    assert status["counters"]["migrationsFailed"] == 0
    assert {f"{o['vmi']['namespace']}/{o['vmi']['name']}" for o in status["recentOutcomes"]} == expected
    # Nothing livemig added is left once migrations are final...
    assert stack.kubectl_json("get", "migrationpolicies.migrations.kubevirt.io")["items"] == [] or all(
        not p["metadata"]["name"].startswith("livemig-")
        for p in stack.kubectl_json("get", "migrationpolicies.migrations.kubevirt.io")["items"]
    )
    labelled = stack.kubectl_json("get", "vmis", "-A", "-l", "livemig.io/move")["items"]
    assert labelled == []
    # ...and deleting the policy removes the rest: its VMIMs and the cordon.
    assert stack.cluster is not None
    stack.cluster.kubectl("delete", "migrationpolicies.livemig.io", "drain", "--timeout=60s")
    wait_until(
        lambda: not [v for v in vmims(stack) if v["metadata"]["labels"].get("livemig.io/policy") == "drain"],
        timeout_s=30,
        what="livemig's VMIMs removed",
    )
    node_obj = stack.kubectl_json("get", "node", DRAINED)
    assert not node_obj["spec"].get("unschedulable")
    assert "livemig.io/cordoned-by" not in (node_obj["metadata"].get("annotations") or {})


def test_dry_run_publishes_the_plan_and_creates_nothing(start_stack: Any) -> None:
    doc = drain_scenario()
    doc["nodes"].append(node("node-05"))  # empty: a consolidation plan releases it at once
    stack = start_stack(doc)
    apply(stack, maintenance_policy("dry", dryRun=True))
    status = wait_until(
        lambda: (s := policy_status(stack, "dry")).get("lastEvaluation", {}).get("result") == "DryRun" and s,
        timeout_s=60,
        what="a dry-run evaluation",
    )
    plan = status["currentPlan"]
    assert plan["state"] == "DryRun"
    assert {f"{m['vmi']['namespace']}/{m['vmi']['name']}" for m in plan["moves"]} == {
        f"prod/web-{i:02d}" for i in range(6)
    }
    assert all(m["sourceNode"] == DRAINED and m["technique"] for m in plan["moves"])
    # A second evaluation later, still nothing was created, and the node was not cordoned.
    evaluations = status["counters"]["evaluations"]
    wait_until(
        lambda: policy_status(stack, "dry")["counters"]["evaluations"] > evaluations,
        timeout_s=30,
        what="another evaluation",
    )
    assert vmims(stack) == []
    assert not stack.kubectl_json("get", "node", DRAINED)["spec"].get("unschedulable")
    # A dry-run consolidation with cordonEmptied cordons nothing either, not even a node its plan releases empty.
    consolidation = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": "dry-consolidation"},
        "spec": {
            "purpose": "Consolidation",
            "dryRun": True,
            "interval": "5s",
            "consolidation": {"lowUtilization": {"cpu": 0.5, "memory": 0.5}, "cordonEmptied": True},
        },
    }
    apply(stack, consolidation)
    wait_until(
        lambda: policy_status(stack, "dry-consolidation").get("counters", {}).get("evaluations", 0) >= 2,
        timeout_s=90,
        what="two dry-run consolidation evaluations",
    )
    assert not stack.kubectl_json("get", "node", "node-05")["spec"].get("unschedulable")
    assert stack.sim is not None
    assert stack.sim.outcomes() == []
    # A selector that matches nothing is a condition and an Event, not a crash.
    apply(
        stack,
        maintenance_policy(
            "nothing",
            selector={"vmiSelector": {"matchLabels": {"app": "no-such-app"}}},
            maintenance={"nodeNames": ["node-09"]},
        ),
    )
    degraded = wait_until(
        lambda: (
            condition(policy_status(stack, "nothing"), "Degraded").get("status") == "True"
            and condition(policy_status(stack, "nothing"), "Degraded")
        ),
        timeout_s=60,
        what="Degraded on the empty selector",
    )
    assert degraded["reason"] == "SelectorMatchesNothing"
    assert "spec.selector matches no running VMI" in degraded["message"]
    assert "spec.maintenance.nodeNames: no such node: node-09" in degraded["message"]
    events = stack.kubectl_json("get", "events", "-n", "default", "--field-selector", "reason=PolicyWarning")
    assert any("node-09" in e["message"] for e in events["items"])
    # SIGTERM stops the operator within 10 s, cleanly.
    assert stack.operator_process is not None
    assert stack.operator_process.stop(timeout_s=10) == 0


def test_operator_killed_mid_drain_does_not_duplicate_a_migration(start_stack: Any) -> None:
    stack = start_stack(drain_scenario(per_node=10, infra_on_drained=0), time_scale=20.0)
    assert stack.sim is not None
    assert stack.operator_process is not None
    apply(
        stack,
        maintenance_policy(
            limits={"maxConcurrentMigrations": 1, "maxConcurrentMigrationsPerNode": 1, "cooldown": "0s"}
        ),
    )
    wait_until(lambda: len(vmims(stack)) >= 3, timeout_s=90, what="three VMIMs")
    stack.operator_process.kill()
    stack.operator_process.start()
    wait_until(
        lambda: node_state(stack, "drain", DRAINED).get("state") == "Drained",
        timeout_s=180,
        what=f"{DRAINED} drained after the restart",
    )
    records = stack.sim.outcomes()
    per_vmi = collections.Counter(r["vmi"] for r in records)
    assert per_vmi == {f"prod/web-{i:02d}": 1 for i in range(10)}, per_vmi
    per_vmi_objects = collections.Counter(f"{v['metadata']['namespace']}/{v['spec']['vmiName']}" for v in vmims(stack))
    assert all(count == 1 for count in per_vmi_objects.values()), per_vmi_objects
    assert all(r["result"] == "Succeeded" for r in records)
    status = wait_until(
        lambda: (s := policy_status(stack, "drain"))["counters"]["migrationsSucceeded"] == 10 and s,
        timeout_s=30,
        what="counters after the restart",
    )
    assert status["counters"]["migrationsFailed"] == 0


def hot_scenario() -> dict[str, Any]:
    """node-01 runs hot on CPU (14 of 16 cores), the other three are nearly idle."""
    nodes = [node(f"node-0{i}", cpu=16, memory="64Gi") for i in range(1, 5)]
    vmis = [vmi("prod", f"busy-{i:02d}", "node-01", vcpus=2, cpu=1.75) for i in range(8)]
    vmis += [vmi("prod", f"idle-{i:02d}", f"node-0{2 + i % 3}", vcpus=1, cpu=0.2) for i in range(3)]
    return scenario(nodes, vmis)


def balancing_policy(name: str = "balance", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "LoadBalancing",
        "loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}, "averagingWindow": "20s", "hysteresis": 0.05},
        "limits": {"maxConcurrentMigrations": 2, "cooldown": "1h"},
        "interval": "5s",
    }
    body.update(spec)
    return {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": body}


def test_load_balancing_waits_for_prometheus_and_acts_once_it_is_back(start_stack: Any) -> None:
    stack = start_stack(hot_scenario())
    assert stack.prometheus is not None
    assert stack.sim is not None
    stack.prometheus.stop()
    apply(stack, balancing_policy())
    status = wait_until(
        lambda: (s := policy_status(stack, "balance")).get("lastEvaluation", {}).get("result") == "StaleMetrics" and s,
        timeout_s=120,
        what="an evaluation without metrics",
    )
    degraded = condition(status, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "MetricsUnavailable"
    assert "nodeCpuUtilization" in degraded["message"]
    assert "cannot reach" in degraded["message"] or "timed out" in degraded["message"]
    assert vmims(stack) == []
    stack.prometheus.start()
    wait_until(lambda: stack.sim.outcomes(), timeout_s=120, what="a move once Prometheus is back")
    wait_until(
        lambda: condition(policy_status(stack, "balance"), "Degraded").get("reason") != "MetricsUnavailable",
        timeout_s=60,
        what="Degraded cleared",
    )
    records = stack.sim.outcomes()
    assert all(r["source"] == "node-01" and r["target"] != "node-01" for r in records), records


def test_load_balancing_leaves_vmis_without_samples_in_place_and_moves_the_measured_ones(start_stack: Any) -> None:
    """A VMI whose own samples are missing (started since the last scrape, or its exporter broken) does not hold a
    LoadBalancing policy at MetricsUnavailable: it stays where it is, the measured VMIs are planned, and Degraded
    names the VMIs left out.  Here the VMI CPU query answers only for three of node-01's eight busy VMIs, just enough
    to bring it under the target (14 cores - 3 x 1.75 = 8.75 of 16)."""
    stack = start_stack(hot_scenario())
    assert stack.sim is not None
    measured = {"prod/busy-05", "prod/busy-06", "prod/busy-07"}
    query = (
        'max by (namespace, name) (rate(kubevirt_vmi_cpu_usage_seconds_total{name=~"busy-0[567]|idle-.*"}[$window]))'
    )
    apply(stack, balancing_policy(prometheus={"queries": {"vmiCpuUsage": query}}))
    wait_until(lambda: stack.sim.outcomes(), timeout_s=120, what="a move of a measured VMI")
    status = wait_until(
        lambda: (s := policy_status(stack, "balance")).get("counters", {}).get("migrationsSucceeded", 0) >= 3 and s,
        timeout_s=120,
        what="the three measured VMIs moved",
    )
    assert {r["vmi"] for r in stack.sim.outcomes()} == measured
    degraded = condition(status, "Degraded")
    assert degraded["reason"] == "MetricsUnavailable"
    assert "no sample for prod/busy-00" in degraded["message"]
    assert status["lastEvaluation"]["result"] != "StaleMetrics"


def test_competing_policies_obey_priority(start_stack: Any) -> None:
    """A maintenance drain and a load-balancing policy over the same VMIs: the drain's VMIs move only by the drain
    (higher priority), and nothing is moved onto the node being drained."""
    doc = hot_scenario()
    stack = start_stack(doc)
    assert stack.sim is not None
    apply(
        stack,
        maintenance_policy(
            "drain",
            selector={},
            maintenance={"nodeNames": ["node-01"]},
            limits={"maxConcurrentMigrations": 2, "maxConcurrentMigrationsPerNode": 2, "cooldown": "1h"},
        ),
    )
    apply(
        stack,
        balancing_policy(
            "balance", loadBalancing={"cpu": {"high": 0.5, "target": 0.3}, "averagingWindow": "20s", "hysteresis": 0.05}
        ),
    )
    wait_until(
        lambda: node_state(stack, "drain", "node-01").get("state") == "Drained", timeout_s=180, what="node-01 drained"
    )
    by_name = {f"{v['metadata']['namespace']}/{v['metadata']['name']}": v for v in vmims(stack)}
    for record in stack.sim.outcomes():
        owner = by_name.get(record["vmim"], {}).get("metadata", {}).get("labels", {}).get("livemig.io/policy")
        if record["source"] == "node-01":
            assert owner == "drain", record
        assert record["target"] != "node-01", record


def _plan_json(stack: Any, policy: str) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    assert stack.cluster is not None
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "livemig",
            "plan",
            "--kubeconfig",
            str(stack.cluster.kubeconfig),
            "--policy",
            policy,
            "--json",
            *(["--prometheus-url", stack.prometheus.url] if stack.prometheus is not None else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout))


def test_node_bandwidth_comes_from_the_annotation_else_measured_migrations_else_the_default(start_stack: Any) -> None:
    # 16 GiB guests using all of it take ~14 s over 10 Gbit/s: long enough to be measured (whole-second
    # timestamps); a page the guest does not use would cross as a marker.
    nodes = [node(f"node-0{i}") for i in range(1, 5)]
    usage = {"cpu": 0.5, "memory": "16Gi", "dirtyRate": "5Mi"}
    doc = scenario(nodes, [vmi("prod", f"web-{i:02d}", DRAINED, memory="16Gi", usage=usage) for i in range(2)])
    doc["nodes"][1]["linkBandwidth"] = "25Gbit"
    doc["simulation"]["bandwidthAnnotation"] = False
    stack = start_stack(doc)
    apply(stack, maintenance_policy())
    # Before any migration: every node has the operator's default (10 Gbit/s).
    before = _plan_json(stack, "drain")["bandwidth"]
    assert before["node-02"] == {"bps": 10e9 / 8, "source": "default"}
    wait_until(
        lambda: node_state(stack, "drain", DRAINED).get("state") == "Drained", timeout_s=120, what=f"{DRAINED} drained"
    )
    after = _plan_json(stack, "drain")["bandwidth"]
    assert after[DRAINED]["source"] == "measured"
    assert 0 < after[DRAINED]["bps"] <= 10e9 / 8, "used memory over duration is at most the link's rate"
    assert after["node-02"]["source"] == "default"
    # With the annotation (the simulator's default), the annotation wins.
    assert stack.cluster is not None
    stack.cluster.kubectl("annotate", "node", "node-02", "livemig.io/migration-bandwidth=25Gbit")
    assert _plan_json(stack, "drain")["bandwidth"]["node-02"] == {"bps": 25e9 / 8, "source": "annotation"}


def test_evacuation_drains_a_node_once_its_health_query_stays_past_the_threshold(start_stack: Any) -> None:
    """The health query (here: the simulator's readiness gauge of node-02, unhealthy when below 2 — i.e. always) must
    hold for `for` before the node is drained with priority; the node is then no target for anyone."""
    nodes = [node(f"node-0{i}") for i in range(1, 5)]
    vmis = [vmi("prod", f"web-{i:02d}", "node-02") for i in range(4)]
    stack = start_stack(scenario(nodes, vmis))
    assert stack.sim is not None
    evacuation = {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": "evacuate"},
        "spec": {
            "purpose": "Evacuation",
            "interval": "5s",
            "evacuation": {
                "healthQuery": 'max by (node) (livemig_sim_node_ready{node="node-02"})',
                "threshold": 2,
                "comparison": "LessThan",
                "for": "15s",
            },
            "limits": {"maxConcurrentMigrations": 2, "maxConcurrentMigrationsPerNode": 2, "cooldown": "0s"},
        },
    }
    apply(stack, evacuation)
    unhealthy = wait_until(
        lambda: (
            node_state(stack, "evacuate", "node-02").get("state") == "Unhealthy"
            and node_state(stack, "evacuate", "node-02")
        ),
        timeout_s=60,
        what="node-02 Unhealthy",
    )
    assert stack.sim.outcomes() == [], "nothing moves before the query has held for `for`"
    assert "past the health threshold since" in unhealthy["message"]
    wait_until(
        lambda: node_state(stack, "evacuate", "node-02").get("state") == "Drained",
        timeout_s=120,
        what="node-02 evacuated",
    )
    records = stack.sim.outcomes()
    assert {r["vmi"] for r in records} == {f"prod/web-{i:02d}" for i in range(4)}
    assert all(r["source"] == "node-02" and r["target"] != "node-02" and r["result"] == "Succeeded" for r in records)
    first_move = min(r["createdAt"] for r in records)
    assert first_move > 0
