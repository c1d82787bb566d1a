"""Required pod anti-affinity by Kubernetes' semantics (kube-scheduler's InterPodAffinity filter): selectors,
namespaces, topology domains, both directions, and the migrating VMI's own source pod."""

from __future__ import annotations

from typing import Any

import pytest

from livemig.core.affinity import PodTopology, anti_affinity_refusal, term_keys
from livemig.core.snapshot_parser import parse_snapshot

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def term(selector: dict[str, Any] | None, key: str = HOST, **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"topologyKey": key, **extra}
    if selector is not None:
        t["labelSelector"] = selector
    return t


def anti(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def cluster(vmis: list[dict[str, Any]]) -> Any:
    nodes = [
        {"name": "a1", "cpu": 8, "memory": "32Gi", "labels": {ZONE: "a"}},
        {"name": "a2", "cpu": 8, "memory": "32Gi", "labels": {ZONE: "a"}},
        {"name": "b1", "cpu": 8, "memory": "32Gi", "labels": {ZONE: "b"}},
        {"name": "bare", "cpu": 8, "memory": "32Gi"},  # no zone label
    ]
    docs = [{"namespace": "ns", "vcpus": 1, "memory": "1Gi", **v} for v in vmis]
    return parse_snapshot(
        {"apiVersion": "livemig.io/v1alpha1", "kind": "ClusterSnapshot", "nodes": nodes, "vmis": docs}
    )


def refusal(snap: Any, incoming: str, node: str) -> str | None:
    """Whether the target pod of VMI `incoming` may go to `node`, every VMI's pod where the snapshot places it."""
    vmi = next(v for v in snap.vmis if v.name == incoming)
    topology = PodTopology(snap.nodes, lambda name: [v for v in snap.vmis if v.node == name])
    return anti_affinity_refusal(vmi, snap.node(node), topology.in_domain, term_keys(snap.vmis))


def pair(incoming: dict[str, Any], existing: dict[str, Any], on: str = "a1") -> Any:
    return cluster([{"name": "in", "node": "b1", **incoming}, {"name": "old", "node": on, **existing}])


def test_match_labels_on_the_hostname_keeps_the_pod_off_that_node_only() -> None:
    snap = pair({"affinity": anti(term({"matchLabels": {"app": "db"}}))}, {"labels": {"app": "db"}})
    assert refusal(snap, "in", "a1") == "anti-affinity with ns/old"
    assert refusal(snap, "in", "a2") is None


@pytest.mark.parametrize(
    ("expression", "labels", "refused"),
    [
        ({"key": "app", "operator": "In", "values": ["db", "cache"]}, {"app": "cache"}, True),
        ({"key": "app", "operator": "In", "values": ["db"]}, {"app": "web"}, False),
        ({"key": "app", "operator": "NotIn", "values": ["db"]}, {"app": "web"}, True),
        ({"key": "app", "operator": "NotIn", "values": ["db"]}, {}, True),  # absent key: NotIn holds
        ({"key": "app", "operator": "NotIn", "values": ["db"]}, {"app": "db"}, False),
        ({"key": "app", "operator": "Exists"}, {"app": "anything"}, True),
        ({"key": "app", "operator": "Exists"}, {"tier": "x"}, False),
        ({"key": "app", "operator": "DoesNotExist"}, {"tier": "x"}, True),
        ({"key": "app", "operator": "DoesNotExist"}, {"app": "db"}, False),
    ],
)
def test_match_expressions(expression: dict[str, Any], labels: dict[str, str], refused: bool) -> None:
    snap = pair({"affinity": anti(term({"matchExpressions": [expression]}))}, {"labels": labels})
    assert (refusal(snap, "in", "a1") is not None) is refused


def test_match_labels_and_expressions_are_anded() -> None:
    selector = {"matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    snap = pair({"affinity": anti(term(selector))}, {"labels": {"app": "db"}})
    assert refusal(snap, "in", "a1") is None
    snap = pair({"affinity": anti(term(selector))}, {"labels": {"app": "db", "tier": "1"}})
    assert refusal(snap, "in", "a1") is not None


def test_an_existing_pods_term_refuses_the_incoming_pod_symmetric() -> None:
    snap = pair({"labels": {"app": "db"}}, {"affinity": anti(term({"matchLabels": {"app": "db"}}))})
    assert refusal(snap, "in", "a1") == "anti-affinity of ns/old"
    assert refusal(snap, "in", "a2") is None


def test_zone_topology_covers_every_node_of_the_zone_and_only_nodes_with_the_label() -> None:
    forward = pair({"affinity": anti(term({"matchLabels": {"app": "db"}}, ZONE))}, {"labels": {"app": "db"}})
    assert refusal(forward, "in", "a2") == "anti-affinity with ns/old"  # same zone, other node
    assert refusal(forward, "in", "bare") is None  # no zone label: the term does not apply there
    symmetric = pair({"labels": {"app": "db"}}, {"affinity": anti(term({"matchLabels": {"app": "db"}}, ZONE))})
    assert refusal(symmetric, "in", "a2") == "anti-affinity of ns/old"
    assert refusal(symmetric, "in", "bare") is None
    on_bare = pair({"labels": {"app": "db"}}, {"affinity": anti(term({"matchLabels": {"app": "db"}}, ZONE))}, "bare")
    assert refusal(on_bare, "in", "a1") is None  # a pod on a node without the label is in no zone


def test_a_term_selects_its_own_namespace_unless_it_names_others() -> None:
    own = pair(
        {"affinity": anti(term({"matchLabels": {"app": "db"}}))}, {"namespace": "other", "labels": {"app": "db"}}
    )
    assert refusal(own, "in", "a1") is None
    named = pair(
        {"affinity": anti(term({"matchLabels": {"app": "db"}}, namespaces=["other"]))},
        {"namespace": "other", "labels": {"app": "db"}},
    )
    assert refusal(named, "in", "a1") == "anti-affinity with other/old"


def test_no_label_selector_selects_nothing_and_an_empty_one_everything() -> None:
    assert refusal(pair({"affinity": anti(term(None))}, {"labels": {"app": "db"}}), "in", "a1") is None
    assert refusal(pair({"affinity": anti(term({}))}, {"labels": {"app": "db"}}), "in", "a1") is not None


def test_every_term_must_hold() -> None:
    terms = anti(term({"matchLabels": {"app": "web"}}), term({"matchLabels": {"app": "db"}}))
    assert refusal(pair({"affinity": terms}, {"labels": {"app": "db"}}), "in", "a1") is not None


def test_the_migrating_vmis_own_source_pod_counts() -> None:
    # Spread by zone, the VMI's own source pod (same labels, still running) keeps its target out of its zone.
    spread = {"labels": {"app": "db"}, "affinity": anti(term({"matchLabels": {"app": "db"}}, ZONE))}
    snap = cluster([{"name": "in", "node": "a1", **spread}])
    assert refusal(snap, "in", "a2") == "anti-affinity with ns/in"
    assert refusal(snap, "in", "b1") is None


def test_the_planner_keeps_a_moved_vmis_source_pod_until_the_plan_ends() -> None:
    from livemig.core.planning.placement import ClusterState

    spread = {"labels": {"app": "db"}, "affinity": anti(term({"matchLabels": {"app": "db"}}, ZONE))}
    snap = cluster([{"name": "in", "node": "a1", **spread}, {"name": "x", "node": "bare", "labels": {"app": "db"}}])
    state = ClusterState(snap, ["a1", "a2", "b1", "bare"])
    moving, other = snap.vmis
    assert state.blocking_reason(moving, "a2") == "anti-affinity with ns/in"
    state.move(moving, "b1")
    # Its source pod is still in zone a while the plan runs, and its target pod is now in zone b.
    assert state.anti_affinity_reason(other, snap.node("a2")) == "anti-affinity of ns/in"
    assert state.anti_affinity_reason(other, snap.node("b1")) == "anti-affinity of ns/in"
    state.move(moving, "a1")  # undone: only the source pod remains
    assert state.anti_affinity_reason(other, snap.node("b1")) is None
