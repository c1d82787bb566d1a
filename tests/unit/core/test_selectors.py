"""livemig.core.selectors: the one LabelSelector, with apimachinery's matching semantics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemig.core import cluster, policy, snapshot_parser
from livemig.core.selectors import (
    LabelSelector,
    LabelSelectorRequirement,
    NodeSelectorOperator,
    SelectorOperator,
    matches,
)

IN, NOT_IN, EXISTS, ABSENT = (
    SelectorOperator.IN,
    SelectorOperator.NOT_IN,
    SelectorOperator.EXISTS,
    SelectorOperator.DOES_NOT_EXIST,
)
GT, LT = NodeSelectorOperator.GT, NodeSelectorOperator.LT


def req(key: str, operator: SelectorOperator | NodeSelectorOperator, *values: str) -> LabelSelectorRequirement:
    return LabelSelectorRequirement(key, operator, values)


def sel(labels: dict[str, str] | None = None, *requirements: LabelSelectorRequirement) -> LabelSelector:
    return LabelSelector(labels or {}, requirements)


@pytest.mark.parametrize(
    ("requirement", "labels", "expected"),
    [
        (req("app", IN, "db", "cache"), {"app": "cache"}, True),
        (req("app", IN, "db"), {"app": "web"}, False),
        (req("app", IN, "db"), {}, False),  # absent key: In never matches
        (req("app", NOT_IN, "db"), {"app": "web"}, True),
        (req("app", NOT_IN, "db"), {"app": "db"}, False),
        (req("app", NOT_IN, "db"), {}, True),  # absent key: NotIn matches
        (req("app", EXISTS), {"app": ""}, True),
        (req("app", EXISTS), {"other": "x"}, False),
        (req("app", ABSENT), {"other": "x"}, True),
        (req("app", ABSENT), {"app": ""}, False),
        (req("cpus", GT, "4"), {"cpus": "8"}, True),
        (req("cpus", GT, "4"), {"cpus": "4"}, False),
        (req("cpus", GT, "-1"), {"cpus": "0"}, True),
        (req("cpus", GT, "4"), {}, False),  # absent key: Gt never matches
        (req("cpus", GT, "4"), {"cpus": "many"}, False),  # not an integer: no match
        (req("cpus", GT, "4"), {"cpus": "1_000"}, False),  # Go's ParseInt takes no underscores
        (req("cpus", GT, "4"), {"cpus": str(2**63)}, False),  # beyond int64
        (req("cpus", GT, "4", "5"), {"cpus": "8"}, False),  # Gt needs exactly one value
        (req("cpus", LT, "4"), {"cpus": "3"}, True),
        (req("cpus", LT, "4"), {"cpus": "4"}, False),
        (req("cpus", LT, "4"), {"cpus": "+3"}, True),
        (req("cpus", LT, "4"), {}, False),  # absent key: Lt never matches
        (req("cpus", LT, "x"), {"cpus": "3"}, False),
    ],
)
def test_each_operator(requirement: LabelSelectorRequirement, labels: dict[str, str], expected: bool) -> None:
    assert requirement.matches(labels) is expected
    assert sel(None, requirement).matches(labels) is expected


@pytest.mark.parametrize("op", list(SelectorOperator))
@pytest.mark.parametrize("labels", [{}, {"k": "a"}, {"k": "b"}, {"other": "a"}])
def test_label_and_node_operators_mean_the_same(op: SelectorOperator, labels: dict[str, str]) -> None:
    values = ("a",) if op in (IN, NOT_IN) else ()
    node_op = NodeSelectorOperator(op.value)
    assert req("k", op, *values).matches(labels) is req("k", node_op, *values).matches(labels)


@given(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=4))
def test_empty_selector_matches_everything(labels: dict[str, str]) -> None:
    assert LabelSelector().matches(labels)
    assert matches(LabelSelector(), labels)
    assert matches(None, labels)


def test_no_selector_and_no_labels() -> None:
    assert matches(None, None)
    assert matches(LabelSelector(), None)
    assert matches(sel(None, req("app", ABSENT)), None)  # None labels are no labels
    assert not matches(sel({"app": "db"}), None)
    assert not matches(sel(None, req("app", EXISTS)), None)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"tier": "prod", "app": "db"}, True),
        ({"tier": "prod", "app": "db", "extra": "x"}, True),
        ({"tier": "dev", "app": "db"}, False),  # matchLabels fails
        ({"app": "db"}, False),  # matchLabels key absent
        ({"tier": "prod", "app": "web"}, False),  # an expression fails
        ({"tier": "prod", "app": "db", "canary": "1"}, False),  # the other expression fails
    ],
)
def test_match_labels_and_expressions_are_anded(labels: dict[str, str], expected: bool) -> None:
    selector = sel({"tier": "prod"}, req("app", IN, "db"), req("canary", ABSENT))
    assert selector.matches(labels) is expected
    assert matches(selector, labels) is expected


def test_cluster_and_policy_use_this_implementation() -> None:
    assert cluster.LabelSelector is LabelSelector
    assert cluster.LabelRequirement is LabelSelectorRequirement
    assert policy.LabelSelector is LabelSelector
    assert policy.LabelSelectorRequirement is LabelSelectorRequirement
    assert policy.SelectorOperator is SelectorOperator
    assert policy.matches is matches


def test_parsers_build_the_shared_types_with_their_operator_sets() -> None:
    snap = snapshot_parser.parse_snapshot(
        {
            "apiVersion": "livemig.io/v1alpha1",
            "kind": "ClusterSnapshot",
            "nodes": [{"name": "n1", "cpu": 8, "memory": "32Gi", "labels": {"cpus": "8"}}],
            "vmis": [
                {
                    "name": "db",
                    "node": "n1",
                    "vcpus": 1,
                    "memory": "1Gi",
                    "labels": {"app": "db"},
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]}
                                ]
                            }
                        },
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {
                                        "matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]
                                    },
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        },
                    },
                }
            ],
        }
    )
    (vmi,) = snap.vmis
    (term,) = vmi.affinity.node_terms
    assert term.match_expressions == (req("cpus", GT, "4"),)
    assert term.match_expressions[0].operator is NodeSelectorOperator.GT
    (anti,) = vmi.affinity.pod_anti_affinity
    assert anti.selector == sel(None, req("app", IN, "db"))
    assert anti.selector.match_expressions[0].operator is SelectorOperator.IN
