"""What a policy applies to: `spec.selector` (namespaces and VMIs) and the label selectors it and other sections
(`spec.nodeSelector`, `spec.maintenance.nodeLabelSelector`) are made of, with the CRD's bounds on their sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from livemig.core.policy.reader import Reader, enum_values, kind_of
from livemig.core.policy.spec import VmiSelector
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, SelectorOperator


def read_vmi_selector(r: Reader, spec: Mapping[str, Any], path: str) -> VmiSelector:
    raw = r.section(spec, "selector", path, ("namespaceSelector", "vmiSelector"))
    if raw is None:
        return VmiSelector()
    return VmiSelector(
        namespace_selector=read_label_selector(r, raw, "namespaceSelector", f"{path}.selector"),
        vmi_selector=read_label_selector(r, raw, "vmiSelector", f"{path}.selector"),
    )


def read_label_selector(r: Reader, parent: Mapping[str, Any], key: str, path: str) -> LabelSelector | None:
    where = f"{path}.{key}"
    raw = r.section(parent, key, path, ("matchLabels", "matchExpressions"))
    if raw is None:
        return None
    labels: dict[str, str] = {}
    if raw.get("matchLabels") is not None:
        match_labels = r.mapping(raw["matchLabels"], f"{where}.matchLabels", None)
        if match_labels is not None:
            if len(match_labels) > 64:
                r.fail(f"{where}.matchLabels", f"must have at most 64 entries, got {len(match_labels)}")
            for label, value in match_labels.items():
                if not isinstance(value, str):
                    r.fail(f"{where}.matchLabels.{label}", f"must be a string, not {kind_of(value)}")
                elif len(value) > 63:
                    r.fail(f"{where}.matchLabels.{label}", "must be at most 63 characters long")
                else:
                    labels[str(label)] = value
    requirements: list[LabelSelectorRequirement] = []
    expressions = raw.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            r.fail(f"{where}.matchExpressions", f"must be a list, not {kind_of(expressions)}")
        elif len(expressions) > 32:
            r.fail(f"{where}.matchExpressions", f"must have at most 32 items, got {len(expressions)}")
        else:
            for index, item in enumerate(expressions):
                requirement = _requirement(r, item, f"{where}.matchExpressions[{index}]")
                if requirement is not None:
                    requirements.append(requirement)
    return LabelSelector(match_labels=MappingProxyType(labels), match_expressions=tuple(requirements))


def _requirement(r: Reader, item: Any, path: str) -> LabelSelectorRequirement | None:
    raw = r.mapping(item, path, ("key", "operator", "values"))
    if raw is None:
        return None
    key = r.string(raw, "key", path, required=True, min_length=1, max_length=317)
    operator = r.enum(raw, "operator", path, SelectorOperator, enum_values(SelectorOperator), required=True)
    values = r.string_list(raw, "values", path, max_items=64, max_length=63)
    if operator is None or values is None or key is None:
        return None
    if operator in (SelectorOperator.IN, SelectorOperator.NOT_IN) and not values:
        r.fail(f"{path}.values", "must be non-empty for operator In or NotIn")
        return None
    if operator in (SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST) and values:
        r.fail(f"{path}.values", "must be empty for operator Exists or DoesNotExist")
        return None
    return LabelSelectorRequirement(key=key, operator=operator, values=values)
