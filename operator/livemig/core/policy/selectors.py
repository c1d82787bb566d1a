"""Kubernetes LabelSelector matching, pure (same semantics as apimachinery's labels.Selector).

- matchLabels: every pair must be present with that value;
- In: the key is present and its value is one of values;  NotIn: the key is absent, or its value is not in values;
- Exists: the key is present;  DoesNotExist: the key is absent;
- all requirements are ANDed; the empty selector matches everything; `None` (no selector) matches everything too.
"""

from __future__ import annotations

from collections.abc import Mapping

from livemig.core.policy.spec import LabelSelector, LabelSelectorRequirement, SelectorOperator


def requirement_matches(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    if requirement.operator is SelectorOperator.IN:
        return present and labels[requirement.key] in requirement.values
    if requirement.operator is SelectorOperator.NOT_IN:
        return not present or labels[requirement.key] not in requirement.values
    if requirement.operator is SelectorOperator.EXISTS:
        return present
    return not present  # DoesNotExist


def matches(selector: LabelSelector | None, labels: Mapping[str, str] | None) -> bool:
    """True when `labels` satisfy `selector` (None selector: always; None labels: treated as no labels)."""
    if selector is None:
        return True
    labels = labels or {}
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    return all(requirement_matches(r, labels) for r in selector.match_expressions)
