"""`SchedulingReader`: the Kubernetes scheduling terms of a snapshot: a node's taints, and a VMI's tolerations, label
selectors and affinity (required node affinity, required pod anti-affinity), read into the types the planners'
placement and the simulator's scheduler share (livemig.core.cluster, livemig.core.selectors).
"""

from __future__ import annotations

import re

from livemig.core.cluster import Affinity, NodeSelectorTerm, PodAffinityTerm, Taint, TaintEffect, Toleration
from livemig.core.errors import value_kind
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, NodeSelectorOperator, SelectorOperator
from livemig.core.snapshot_parser.fields import FieldReader, label_value


class SchedulingReader(FieldReader):
    """The base of both NodeReader (taints) and VmiReader (tolerations, selectors, affinity)."""

    def taints(self, value: object, path: str) -> tuple[Taint, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, value, effect}")
            return ()
        out: list[Taint] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "value", "effect"))
            if m is None:
                continue
            key = self.string(m.get("key"), f"{p}.key")
            effect = self.enum(m.get("effect"), f"{p}.effect", TaintEffect)
            val = m.get("value", "")
            if key is not None and effect is not None:
                out.append(Taint(key, label_value(val) if val is not None else "", effect))
        return tuple(out)

    def tolerations(self, value: object, path: str) -> tuple[Toleration, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, operator, value, effect}")
            return ()
        out: list[Toleration] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "operator", "value", "effect", "tolerationSeconds"))
            if m is None:
                continue
            operator = m.get("operator", "Equal")
            if operator not in ("Equal", "Exists"):
                self.fail(f"{p}.operator", f"must be Equal or Exists, not {operator!r}")
                continue
            key = m.get("key", "") or ""
            if not isinstance(key, str):
                self.fail(f"{p}.key", f"must be a string, not {value_kind(key)}")
                continue
            if operator == "Equal" and not key:
                self.fail(f"{p}.key", "is required with operator Equal")
                continue
            effect = self.enum(m["effect"], f"{p}.effect", TaintEffect) if m.get("effect") else None
            if m.get("effect") and effect is None:
                continue
            out.append(Toleration(key, str(operator), label_value(m.get("value", "") or ""), effect))
        return tuple(out)

    def requirements(self, value: object, path: str, *, node: bool) -> tuple[LabelSelectorRequirement, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {key, operator, values}")
            return ()
        operators = NodeSelectorOperator if node else SelectorOperator  # Gt and Lt only in node selector terms
        ops = tuple(o.value for o in operators)
        out: list[LabelSelectorRequirement] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("key", "operator", "values"))
            if m is None:
                continue
            key = self.string(m.get("key"), f"{p}.key")
            op = m.get("operator")
            if op not in ops:
                self.fail(f"{p}.operator", f"must be one of {', '.join(ops)}, not {op!r}")
                continue
            raw = m.get("values") or []
            if not isinstance(raw, list):
                self.fail(f"{p}.values", "must be a list of strings")
                continue
            values = tuple(label_value(v) for v in raw)
            if op in ("In", "NotIn") and not values:
                self.fail(f"{p}.values", f"must not be empty with operator {op}")
                continue
            if op in ("Exists", "DoesNotExist") and values:
                self.fail(f"{p}.values", f"must be empty with operator {op}")
                continue
            if op in ("Gt", "Lt") and (len(values) != 1 or not re.fullmatch(r"-?\d+", values[0])):
                self.fail(f"{p}.values", f"must hold one integer with operator {op}")
                continue
            if key is not None:
                out.append(LabelSelectorRequirement(key, operators(op), values))
        return tuple(out)

    def label_selector(self, value: object, path: str) -> LabelSelector | None:
        m = self.mapping(value, path, ("matchLabels", "matchExpressions"))
        if m is None:
            return None
        before = len(self.errors)
        labels = self.labels(m.get("matchLabels"), f"{path}.matchLabels")
        exprs = self.requirements(m.get("matchExpressions"), f"{path}.matchExpressions", node=False)
        return LabelSelector(labels, exprs) if len(self.errors) == before else None

    def affinity(self, value: object, path: str) -> Affinity:
        if value is None:
            return Affinity()
        m = self.mapping(value, path, ("nodeAffinity", "podAntiAffinity"))
        if m is None:
            return Affinity()
        node_terms: list[NodeSelectorTerm] = []
        anti: list[PodAffinityTerm] = []
        req = "requiredDuringSchedulingIgnoredDuringExecution"
        pref = "preferredDuringSchedulingIgnoredDuringExecution"
        if m.get("nodeAffinity") is not None:
            p = f"{path}.nodeAffinity"
            na = self.mapping(m["nodeAffinity"], p, (req, pref))
            if na is not None and na.get(req) is not None:
                rq = self.mapping(na[req], f"{p}.{req}", ("nodeSelectorTerms",))
                terms = rq.get("nodeSelectorTerms") if rq is not None else None
                if rq is not None and (not isinstance(terms, list) or not terms):
                    self.fail(f"{p}.{req}.nodeSelectorTerms", "must be a non-empty list")
                elif isinstance(terms, list):
                    for i, term in enumerate(terms):
                        tp = f"{p}.{req}.nodeSelectorTerms[{i}]"
                        tm = self.mapping(term, tp, ("matchExpressions", "matchFields"))
                        if tm is None:
                            continue
                        exprs = self.requirements(tm.get("matchExpressions"), f"{tp}.matchExpressions", node=True)
                        fields = self.requirements(tm.get("matchFields"), f"{tp}.matchFields", node=True)
                        for j, f in enumerate(fields):
                            if f.key != "metadata.name":
                                self.fail(f"{tp}.matchFields[{j}].key", "only metadata.name is supported")
                        node_terms.append(NodeSelectorTerm(exprs + fields))
        if m.get("podAntiAffinity") is not None:
            p = f"{path}.podAntiAffinity"
            pa = self.mapping(m["podAntiAffinity"], p, (req, pref))
            if pa is not None and pa.get(req) is not None:
                items = pa[req]
                if not isinstance(items, list):
                    self.fail(f"{p}.{req}", "must be a list of pod affinity terms")
                else:
                    for i, item in enumerate(items):
                        tp = f"{p}.{req}[{i}]"
                        tm = self.mapping(item, tp, ("labelSelector", "topologyKey", "namespaces"))
                        if tm is None:
                            continue
                        term_errors = len(self.errors)
                        sel = (
                            self.label_selector(tm["labelSelector"], f"{tp}.labelSelector")
                            if tm.get("labelSelector") is not None
                            else None  # selects nothing
                        )
                        topo = self.string(tm.get("topologyKey"), f"{tp}.topologyKey")
                        nss = tm.get("namespaces")
                        namespaces: tuple[str, ...] | None = None
                        if nss is not None:
                            if not isinstance(nss, list) or not all(isinstance(x, str) for x in nss):
                                self.fail(f"{tp}.namespaces", "must be a list of namespace names")
                            else:
                                namespaces = tuple(nss) or None
                        if len(self.errors) == term_errors and topo is not None:
                            anti.append(PodAffinityTerm(sel, topo, namespaces))
        return Affinity(tuple(node_terms), tuple(anti))
