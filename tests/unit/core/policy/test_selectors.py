"""LabelSelector matching, with Kubernetes semantics."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemig.core.policy import LabelSelector, LabelSelectorRequirement, SelectorOperator, matches

IN, NOT_IN, EXISTS, ABSENT = (
    SelectorOperator.IN,
    SelectorOperator.NOT_IN,
    SelectorOperator.EXISTS,
    SelectorOperator.DOES_NOT_EXIST,
)


def selector(labels: dict[str, str] | None = None, *requirements: LabelSelectorRequirement) -> LabelSelector:
    return LabelSelector(match_labels=MappingProxyType(labels or {}), match_expressions=requirements)


def req(key: str, operator: SelectorOperator, *values: str) -> LabelSelectorRequirement:
    return LabelSelectorRequirement(key=key, operator=operator, values=values)


@pytest.mark.parametrize(
    ("sel", "labels", "expected"),
    [
        (selector(), {}, True),
        (selector(), {"app": "db"}, True),
        (selector({"app": "db"}), {"app": "db", "tier": "prod"}, True),
        (selector({"app": "db"}), {"app": "web"}, False),
        (selector({"app": "db"}), {}, False),
        (selector({"app": "db", "tier": "prod"}), {"app": "db"}, False),
        (selector(None, req("app", IN, "db", "cache")), {"app": "cache"}, True),
        (selector(None, req("app", IN, "db")), {"app": "web"}, False),
        (selector(None, req("app", IN, "db")), {}, False),
        (selector(None, req("app", NOT_IN, "db")), {"app": "web"}, True),
        (selector(None, req("app", NOT_IN, "db")), {}, True),  # NotIn matches an absent key, as in Kubernetes
        (selector(None, req("app", NOT_IN, "db")), {"app": "db"}, False),
        (selector(None, req("app", EXISTS)), {"app": ""}, True),
        (selector(None, req("app", EXISTS)), {"other": "x"}, False),
        (selector(None, req("app", ABSENT)), {"other": "x"}, True),
        (selector(None, req("app", ABSENT)), {"app": "db"}, False),
        (selector({"tier": "prod"}, req("app", IN, "db"), req("canary", ABSENT)), {"tier": "prod", "app": "db"}, True),
        (
            selector({"tier": "prod"}, req("app", IN, "db"), req("canary", ABSENT)),
            {"tier": "prod", "app": "db", "canary": "1"},
            False,
        ),
    ],
)
def test_matches(sel: LabelSelector, labels: dict[str, str], expected: bool) -> None:
    assert matches(sel, labels) is expected


def test_no_selector_matches_everything_and_none_labels_are_no_labels() -> None:
    assert matches(None, {"a": "b"})
    assert matches(None, None)
    assert matches(selector(None, req("app", ABSENT)), None)
    assert not matches(selector({"app": "db"}), None)


label_maps = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["x", "y", "z"]), max_size=4)


@given(labels=label_maps, required=label_maps)
def test_match_labels_is_subset_inclusion(labels: dict[str, str], required: dict[str, str]) -> None:
    assert matches(selector(required), labels) == (required.items() <= labels.items())


@given(
    labels=label_maps,
    key=st.sampled_from(["a", "b", "e"]),
    values=st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2),
)
def test_in_and_not_in_are_complements(labels: dict[str, str], key: str, values: list[str]) -> None:
    assert matches(selector(None, req(key, IN, *values)), labels) != matches(
        selector(None, req(key, NOT_IN, *values)), labels
    )
    assert matches(selector(None, req(key, EXISTS)), labels) != matches(selector(None, req(key, ABSENT)), labels)
