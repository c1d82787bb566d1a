"""Hostile policies and garbage KubeVirt objects next to a running operator (issue 12, item 5), against the real API
server, a real Prometheus and the simulator.

Two dozen policies the API server accepts, with hostile names, selector values, node names, label names and
`spec.prometheus` query overrides (`"}`, `or vector(1)`, `=~".*"`, newlines), sit next to VMIs whose objects are
garbage (no status, an unknown phase, a node that does not exist, numbers too big to mean anything).  One of the
policies is a real drain of two canary VMIs.  The operator must stay up (one process, never restarted), give every
policy a condition, log what it leaves out, and touch no VMI but the canaries: counted from the simulator's outcome
log and the VMIMs on the API server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from livemig.core.policy import parse_policy
from support.stack_helpers import node, policy_status, scenario, vmi, vmims, wait_until

pytestmark = pytest.mark.integration

CANARY_NODE = "node-04"
LONG_NAME = ("a" * 62 + ".") * 4 + "z"  # 253 characters: the longest name the API server takes
assert len(LONG_NAME) == 253
HOSTILE = ['"}', '"} or vector(1)', '=~".*"', "a\nb", 'x"}) or vector(1) or up{a="', "${window}", "a,b!=c"]


def hostile_scenario() -> dict[str, Any]:
    nodes = [node(f"node-0{i}", cpu=16, memory="64Gi") for i in range(1, 5)]
    # node-01 runs hot: a LoadBalancing policy that somehow reached it would move its VMIs.
    vmis = [vmi("prod", f"busy-{i:02d}", "node-01", vcpus=2, cpu=1.75) for i in range(6)]
    vmis += [vmi("prod", f"idle-{i:02d}", f"node-0{2 + i % 2}", vcpus=1, cpu=0.1) for i in range(4)]
    vmis += [vmi("prod", f"canary-{i:02d}", CANARY_NODE, vcpus=1, cpu=0.1) for i in range(2)]
    return scenario(nodes, vmis)


def policy(name: str, purpose: str, section: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "livemig.io/v1alpha1",
        "kind": "MigrationPolicy",
        "metadata": {"name": name},
        "spec": {"purpose": purpose, **section, "interval": "5s", "limits": {"cooldown": "0s"}, **spec},
    }


def hostile_selector(value: str) -> dict[str, Any]:
    return {"vmiSelector": {"matchLabels": {"app": value}}}


def hostile_policies() -> list[dict[str, Any]]:
    """Accepted by the API server, every one of them; none selects anything real but the canary drain."""
    lb = {"loadBalancing": {"cpu": {"high": 0.5, "target": 0.3}, "averagingWindow": "10s"}}
    cons = {"consolidation": {"lowUtilization": {"cpu": 0.7}}}
    out: list[dict[str, Any]] = []
    for i, value in enumerate(HOSTILE):
        out.append(policy(f"lb-selector-{i}", "LoadBalancing", lb, selector=hostile_selector(value)))
        out.append(
            policy(f"drain-names-{i}", "Maintenance", {"maintenance": {"nodeNames": [f"node-01{value}", value]}})
        )
    overrides = [
        "node_cpu_seconds_total or vector(1)",
        '{__name__=~".*"}',
        'sum by (node) (rate(node_cpu_seconds_total{mode="idle"}[$window])) or vector(1)\n',
        'vector(1)"} or {node=~".*"',  # not PromQL: Prometheus answers 400
        "1 - (",
    ]
    for i, query in enumerate(overrides):
        out.append(
            policy(
                f"lb-query-{i}",
                "LoadBalancing",
                lb,
                nodeSelector={"matchLabels": {"kubernetes.io/hostname": HOSTILE[i]}},
                prometheus={"queries": {"nodeCpuUtilization": query, "vmiDirtyRate": query}},
            )
        )
    out.append(
        policy(
            "cons-query",
            "Consolidation",
            cons,
            nodeSelector={"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": HOSTILE}]},
            prometheus={"queries": {"nodeCpuUtilization": '{__name__=~".+"} or vector(0)'}},
        )
    )
    # Evacuation whose health query says every node is unhealthy, with nodes selected by a hostile value, and one
    # reading its node from a label every sample has but no node is named after.
    out.append(
        policy(
            "evac-scope",
            "Evacuation",
            {"evacuation": {"healthQuery": "max by (node) (node_memory_MemTotal_bytes)", "threshold": 0, "for": "0s"}},
            nodeSelector={"matchLabels": {"kubernetes.io/hostname": '"} or vector(1)'}},
        )
    )
    out.append(
        policy(
            "evac-label",
            "Evacuation",
            {"evacuation": {"healthQuery": "up or vector(1)", "threshold": 0, "for": "0s", "nodeLabel": "instance"}},
        )
    )
    out.append(
        policy(
            "x.y-z.0",
            "Consolidation",
            cons,
            selector={"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": '"} or vector(1)'}}},
        )
    )
    # The one real drain: canaries only, a 253-character name, a hostile node name next to the real one.
    out.append(
        policy(
            LONG_NAME,
            "Maintenance",
            {"maintenance": {"nodeNames": [CANARY_NODE, CANARY_NODE + '"} or vector(1)']}},
            selector={"vmiSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["canary"]}]}},
        )
    )
    return out


def garbage_vmis() -> list[dict[str, Any]]:
    """VMIs the operator reads but cannot use; labelled like the canaries and placed where the drain looks."""

    def base(name: str, status: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "prod", "labels": {"app": "canary"}},
            "spec": {"domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"}, "devices": {}}, **spec},
        }
        if status is not None:
            doc["status"] = status
        return doc

    running = {"phase": "Running", "nodeName": CANARY_NODE}
    return [
        base("garbage-no-status", None),
        base("garbage-unknown-phase", {"phase": "Unknown", "nodeName": CANARY_NODE}),
        base("garbage-empty-phase", {"phase": "", "nodeName": CANARY_NODE}),
        base("garbage-ghost-node", {"phase": "Running", "nodeName": "node-99"}),
        base("garbage-no-node", {"phase": "Running"}),
        base(
            "garbage-huge",
            running,
            domain={
                "cpu": {"cores": 2**32 - 1, "sockets": 2**32 - 1, "threads": 2**32 - 1},
                "memory": {"guest": "999999999Ei"},
                "devices": {},
            },
        ),
        base(
            "garbage-conditions",
            {**running, "conditions": [{"type": "LiveMigratable", "status": "Maybe"}, {"type": "", "status": ""}]},
        ),
        base("garbage-history", running),
    ]


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def test_hostile_policies_and_garbage_vmis_neither_crash_the_operator_nor_widen_a_scope(start_stack: Any) -> None:
    stack = start_stack(hostile_scenario())
    operator = stack.operator_process
    assert operator is not None
    assert stack.cluster is not None
    garbage = garbage_vmis()
    garbage[-1]["metadata"]["annotations"] = {"livemig.io/migrations": '{"not": json'}
    stack.cluster.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(as_list(garbage)))
    policies = hostile_policies()
    assert len(policies) >= 20
    for doc in policies:
        parse_policy(doc)  # accepted offline too (the fuzz test holds the parser and the API server to agree)
    stack.cluster.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(as_list(policies)))
    names = [p["metadata"]["name"] for p in policies]

    def conditioned() -> bool:
        return all(policy_status(stack, n).get("conditions") for n in names)

    wait_until(conditioned, timeout_s=180, what="a condition on every hostile policy")
    drained = wait_until(
        lambda: any(
            n.get("name") == CANARY_NODE and n.get("state") == "Drained"
            for n in policy_status(stack, LONG_NAME).get("nodes") or []
        ),
        timeout_s=180,
        what="the canary drain",
    )
    assert drained
    # Let every policy evaluate a few more times on the same inputs before judging.
    evaluations = {n: policy_status(stack, n).get("counters", {}).get("evaluations", 0) for n in names}
    wait_until(
        lambda: all(
            policy_status(stack, n).get("counters", {}).get("evaluations", 0) >= evaluations[n] + 2 for n in names
        ),
        timeout_s=120,
        what="two more evaluations of every policy",
    )

    # The operator never crashed: one process, still running.
    assert operator.starts == 1
    assert operator.process is not None
    assert operator.process.poll() is None, operator.log_tail()
    log = operator.log.read_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
    for name in ("garbage-ghost-node", "garbage-huge"):
        assert any("left out" in line and f"prod/{name}" in line for line in log.splitlines()), name

    # Nothing but the canaries was touched: the simulator's log and the VMIMs on the API server agree.
    records = stack.sim.outcomes()
    assert {r["vmi"] for r in records} == {"prod/canary-00", "prod/canary-01"}, records
    assert all(r["source"] == CANARY_NODE and r["result"] == "Succeeded" for r in records), records
    assert {f"{v['metadata']['namespace']}/{v['spec']['vmiName']}" for v in vmims(stack)} == {
        "prod/canary-00",
        "prod/canary-01",
    }
    # Each policy has a verdict: Ready, or a condition that says why not.
    report: dict[str, str] = {}
    for name in names:
        conditions = {c["type"]: c for c in policy_status(stack, name)["conditions"]}
        assert "Ready" in conditions, (name, conditions)
        degraded = conditions.get("Degraded", {})
        report[name[:20]] = f"Ready={conditions['Ready']['status']} Degraded={degraded.get('reason', '-')}"
    print(json.dumps(report, indent=1))
    # What the snapshot left out is not waited for in the metrics (it has none): no condition names it.
    for name in names:
        message = {c["type"]: c for c in policy_status(stack, name)["conditions"]}.get("Degraded", {}).get(
            "message", ""
        )
        assert "garbage-ghost-node" not in message, (name, message)
        assert "garbage-huge" not in message, (name, message)
    for i in range(3, 5):  # overrides that are not PromQL: no move, and the condition names the query
        degraded = {c["type"]: c for c in policy_status(stack, f"lb-query-{i}")["conditions"]}["Degraded"]
        assert degraded["status"] == "True", degraded
        assert "nodeCpuUtilization" in degraded["message"], degraded
