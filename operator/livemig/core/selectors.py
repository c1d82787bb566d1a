"""Kubernetes label selectors, pure: the one implementation the cluster snapshot and the policy both use.

Matching follows apimachinery (a metav1.LabelSelector as a labels.Selector, and a core/v1 NodeSelectorTerm's
requirements):
- matchLabels: every pair must be present with that value; matchLabels and all requirements are ANDed;
- In: the key is present and its value is one of values;  NotIn: the key is absent, or its value is not in values;
- Exists: the key is present;  DoesNotExist: the key is absent;
- Gt / Lt: the key is present and its value, read as a base-10 int64, is greater / less than the one value;
  a value that is not such an integer (either side) does not match;
- the empty selector matches everything; no selector (`None`, in `matches`) matches everything too.

Which operators a field allows is the parsers' business: a LabelSelector's matchExpressions take `SelectorOperator`,
a node selector term's take `NodeSelectorOperator` (the same plus Gt and Lt), as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})
_INT64_RE = re.compile(r"[+-]?[0-9]+")  # strconv.ParseInt(s, 10, 64): no spaces, no underscores
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class SelectorOperator(StrEnum):
    """metav1.LabelSelectorOperator: what a LabelSelector's matchExpressions allow."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class NodeSelectorOperator(StrEnum):
    """core/v1 NodeSelectorOperator: a node selector term's operators, the label ones plus Gt and Lt."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    """One `matchExpressions` (or node term `matchFields`) entry."""

    key: str
    operator: SelectorOperator | NodeSelectorOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Both enums are StrEnums over the same strings: dispatch on the string.
        present = self.key in labels
        match self.operator.value:
            case "In":
                return present and labels[self.key] in self.values
            case "NotIn":
                return not present or labels[self.key] not in self.values
            case "Exists":
                return present
            case "DoesNotExist":
                return not present
        if not present or len(self.values) != 1:
            return False
        have, limit = _int64(labels[self.key]), _int64(self.values[0])
        if have is None or limit is None:
            return False
        return have > limit if self.operator.value == "Gt" else have < limit


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes LabelSelector: every matchLabels pair and every expression must hold (empty matches all)."""

    match_labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.match_expressions
        )


def matches(selector: LabelSelector | None, labels: Mapping[str, str] | None) -> bool:
    """True when `labels` satisfy `selector` (None selector: always; None labels: treated as no labels)."""
    return selector is None or selector.matches(labels or _EMPTY)


def _int64(text: str) -> int | None:
    if not _INT64_RE.fullmatch(text):
        return None
    n = int(text)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


__all__ = [
    "LabelSelector",
    "LabelSelectorRequirement",
    "NodeSelectorOperator",
    "SelectorOperator",
    "matches",
]
