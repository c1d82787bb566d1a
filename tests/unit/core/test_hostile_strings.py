"""Hostile strings in a policy cannot widen a query or a scope (issue 12, item 5).

- Names, label values, selector values, node names and label names never reach PromQL: a built-in query is its
  template with livemig's own `$window`; an override (`spec.prometheus.queries`) or `healthQuery` is the policy
  author's own PromQL and is run verbatim, with nothing from any object spliced into it.
- An answer wider than asked (an override ending in `or vector(1)`, a `=~".*"` matcher, hostile label values in
  the result) cannot widen what a policy touches: samples without the identifying label are dropped, samples for
  nodes or VMIs that do not exist change nothing, and a hot node outside `spec.nodeSelector` is never drained.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from livemig.core.evaluation import MetricsState, evaluate
from livemig.core.inventory import ClusterObjects, NodeMetrics, build_snapshot
from livemig.core.policy import parse_policy
from livemig.core.queries import (
    BUILTIN,
    DEFAULT_WINDOW_S,
    PlannedQuery,
    QueryAnswer,
    QueryKey,
    Sample,
    collect,
    format_duration,
    plan_queries,
)

HOSTILE = [
    '"}',
    '"} or vector(1)',
    'x"}) or vector(1) or up{a="',
    "or vector(1)",
    '=~".*"',
    '{node=~".*"}',
    "a\nb",
    "\\",
    "$window",
    "${window}",
    "a,b!=c",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=63))


def manifest(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name}, "spec": spec}


@st.composite
def hostile_policies(draw: st.DrawFn) -> dict[str, Any]:
    """Valid policies (the parser accepts them) whose strings are as hostile as the CRD allows."""
    selector = {
        "matchLabels": draw(st.dictionaries(hostile_text, hostile_text, max_size=3)),
        "matchExpressions": [
            {
                "key": draw(hostile_text.filter(bool)),
                "operator": "In",
                "values": draw(st.lists(hostile_text, min_size=1)),
            }
        ],
    }
    purpose = draw(st.sampled_from(["Maintenance", "Evacuation", "LoadBalancing", "Consolidation"]))
    sections: dict[str, dict[str, Any]] = {
        "Maintenance": {
            "maintenance": {"nodeNames": draw(st.lists(hostile_text.filter(bool), min_size=1, unique=True))}
        },
        "Evacuation": {
            "evacuation": {
                "healthQuery": 'disk_errors{node!=""}',
                "threshold": 1,
                "nodeLabel": draw(hostile_text.filter(bool)),
            }
        },
        "LoadBalancing": {
            "loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}, "memory": {"high": 0.9, "target": 0.7}}
        },
        "Consolidation": {"consolidation": {"lowUtilization": {"cpu": 0.3}}},
    }
    section = sections[purpose]
    spec: dict[str, Any] = {
        "purpose": purpose,
        **section,
        "selector": {"vmiSelector": selector, "namespaceSelector": {"matchLabels": {"tier": draw(hostile_text)}}},
        "nodeSelector": {"matchLabels": {draw(hostile_text): draw(hostile_text)}},
    }
    overrides = draw(
        st.dictionaries(st.sampled_from([k.value for k in QueryKey]), hostile_text.filter(bool), max_size=3)
    )
    if overrides:
        spec["prometheus"] = {"queries": overrides}
    name = draw(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z"))
    return manifest(spec, name)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(hostile_policies())
def test_nothing_from_a_policy_reaches_promql_but_its_own_queries(doc: dict[str, Any]) -> None:
    policy = parse_policy(doc)
    overrides = (doc["spec"].get("prometheus") or {}).get("queries") or {}
    window = format_duration(DEFAULT_WINDOW_S)
    for q in plan_queries(policy)[0]:
        if q.key == "healthQuery":
            assert q.promql == doc["spec"]["evacuation"]["healthQuery"]
            assert q.by == (doc["spec"]["evacuation"]["nodeLabel"],), "a label name to read, never PromQL"
            continue
        key = QueryKey(q.key)
        if key.value in overrides:
            assert q.overridden
            assert q.promql == overrides[key.value].replace("$window", window), "run verbatim, nothing spliced in"
            assert q.age_promql is None
        else:
            assert q.promql == BUILTIN[key].template.replace("$window", window)
            assert q.age_promql == BUILTIN[key].age_query(", ".join(q.by))


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}, "annotations": {}},
        "spec": {},
        "status": {"allocatable": {"cpu": "16", "memory": "64Gi"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def vmi(name: str, on: str, app: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "prod", "labels": {"app": app}, "annotations": {}},
        "spec": {"domain": {"cpu": {"cores": 4}, "memory": {"guest": "8Gi"}}, "evictionStrategy": "LiveMigrate"},
        "status": {"phase": "Running", "nodeName": on, "conditions": [{"type": "LiveMigratable", "status": "True"}]},
    }


def wide_answer(key: QueryKey, samples: list[tuple[dict[str, str], float]]) -> QueryAnswer:
    by = ("node",) if key.value.startswith("node") else ("namespace", "name")
    query = PlannedQuery(str(key), 'x or vector(1) or {node=~".*"}', None, by, overridden=True)
    return QueryAnswer(query, [Sample(labels, value) for labels, value in samples])


def test_a_wider_answer_than_asked_cannot_widen_what_a_policy_touches() -> None:
    lb = parse_policy(
        manifest(
            {
                "purpose": "LoadBalancing",
                "loadBalancing": {"cpu": {"high": 0.8, "target": 0.6}},
                "nodeSelector": {"matchLabels": {"pool": "a"}},
                "selector": {"vmiSelector": {"matchLabels": {"app": "web"}}},
                "limits": {"cooldown": "0s"},
                "prometheus": {"queries": {"nodeCpuUtilization": 'x or vector(1) or {node=~".*"}'}},
            }
        )
    )
    # n1 (pool b, outside the policy's nodes) is the hottest node; n2 and n3 are in the pool. A hostile answer also
    # carries a sample without a node label, one for a node that does not exist and one whose label value is PromQL.
    nodes = [node("n1", {"pool": "b"}), node("n2", {"pool": "a"}), node("n3", {"pool": "a"})]
    vmis = [vmi(f"hot{i}", "n1", "web") for i in range(4)] + [vmi("db", "n2", "db"), vmi("web", "n2", "web")]
    answer = wide_answer(
        QueryKey.NODE_CPU_UTILIZATION,
        [
            ({}, 1.0),
            ({"node": "n1"}, 0.99),
            ({"node": "n2"}, 0.3),
            ({"node": "n3"}, 0.2),
            ({"node": "ghost"}, 0.99),
            ({"node": 'n2"} or vector(1)'}, 0.99),
        ],
    )
    collected = collect([answer], nodes=["n2", "n3"], vmis=[], max_age_s=120)
    assert "" not in collected.nodes, "a sample without its node label is dropped"
    assert not collected.problems["nodeCpuUtilization"]
    node_metrics = {name: NodeMetrics(cpu_utilization=v["nodeCpuUtilization"]) for name, v in collected.nodes.items()}
    inventory = build_snapshot(
        ClusterObjects(nodes=nodes, namespaces=[{"metadata": {"name": "prod"}}], vmis=vmis), 1.8e9, node_metrics
    )
    assert sorted(n.name for n in inventory.snapshot.nodes) == ["n1", "n2", "n3"], "no node made up from a sample"
    evaluation = evaluate(lb, inventory, MetricsState())
    moves = evaluation.plan.moves if evaluation.plan is not None else ()
    assert not moves, f"n1 is outside spec.nodeSelector, n2 and n3 are cool: nothing to do, got {moves}"
    # The same hostile answer marking n2 hot moves only the selected VMI on n2, never the db VMI, never to n1.
    hot_n2 = wide_answer(
        QueryKey.NODE_CPU_UTILIZATION, [({}, 1.0), ({"node": "n1"}, 0.1), ({"node": "n2"}, 0.82), ({"node": "n3"}, 0.1)]
    )
    collected = collect([hot_n2], nodes=["n2", "n3"], vmis=[], max_age_s=120)
    node_metrics = {name: NodeMetrics(cpu_utilization=v["nodeCpuUtilization"]) for name, v in collected.nodes.items()}
    inventory = build_snapshot(
        ClusterObjects(nodes=nodes, namespaces=[{"metadata": {"name": "prod"}}], vmis=vmis), 1.8e9, node_metrics
    )
    evaluation = evaluate(lb, inventory, MetricsState())
    assert evaluation.plan is not None
    assert {(m.vmi, m.target) for m in evaluation.plan.moves} <= {("prod/web", "n3")}
    assert evaluation.plan.moves, "n2 is hot: its selected VMI moves within the pool"
