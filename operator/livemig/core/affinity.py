"""Required pod anti-affinity as kube-scheduler's InterPodAffinity filter applies it: the one implementation the
planners' placement and the simulator's scheduler share.

A pod P may go to node N unless (kube-scheduler `pkg/scheduler/framework/plugins/interpodaffinity/filtering.go`):

- one of P's `requiredDuringSchedulingIgnoredDuringExecution` anti-affinity terms selects a pod already placed in
  N's topology domain for the term's `topologyKey` (the nodes whose label `topologyKey` has N's value); a node
  without that label is in no domain, so the term does not hold P off it;
- or an existing pod's term selects P, and that pod is in N's domain for the term's key (the rule is symmetric).

A term selects a pod in its namespaces (`namespaces`; none: the term owner's namespace) whose labels match its label
selector (matchLabels and matchExpressions In/NotIn/Exists/DoesNotExist, `livemig.core.selectors`); a term without
a label selector selects nothing, an empty one everything.  Terms are ANDed.  "Placed" includes every pod on the
node: a migrating VMI's source pod stays until the migration ends, and it carries the VMI's labels and terms, so a
term whose selector matches the VMI itself holds its target off the source's domain (with `kubernetes.io/hostname`
that is only the source node, which a target never is).  Not modelled: `namespaceSelector`, `matchLabelKeys`, pod
affinity (only anti-affinity), preferred terms.  Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from livemig.core.cluster import Node, Vmi

#: The pods in a node's topology domain for a key (nothing when the node has no such label).
InDomain = Callable[[Node, str], Iterable[Vmi]]


def term_keys(pods: Iterable[Vmi]) -> tuple[str, ...]:
    """The topology keys of the placed pods' anti-affinity terms (where the symmetric check must look)."""
    return tuple(sorted({t.topology_key for v in pods for t in v.affinity.pod_anti_affinity}))


def anti_affinity_refusal(vmi: Vmi, node: Node, in_domain: InDomain, keys: Iterable[str]) -> str | None:
    """Why required pod anti-affinity keeps `vmi`'s (incoming) pod off `node`, or None.  `keys`: `term_keys` of the
    placed pods."""
    for term in vmi.affinity.pod_anti_affinity:
        for other in in_domain(node, term.topology_key):
            if term.selects(vmi.namespace, other):
                return f"anti-affinity with {other.key}"
    for key in keys:
        for owner in in_domain(node, key):
            for term in owner.affinity.pod_anti_affinity:
                if term.topology_key == key and term.selects(owner.namespace, vmi):
                    return f"anti-affinity of {owner.key}"
    return None


class PodTopology:
    """Pods by topology domain over a set of nodes; `pods_on(node name)` is read live (the planners move VMIs)."""

    def __init__(self, nodes: Iterable[Node], pods_on: Callable[[str], Iterable[Vmi]]) -> None:
        self._nodes = list(nodes)
        self._pods_on = pods_on
        self._domains: dict[str, Mapping[str, list[str]]] = {}

    def in_domain(self, node: Node, key: str) -> Iterator[Vmi]:
        value = node.topology_value(key)
        if value is None:
            return
        for name in self._domain(key).get(value, ()):
            yield from self._pods_on(name)

    def _domain(self, key: str) -> Mapping[str, list[str]]:
        domains = self._domains.get(key)
        if domains is None:
            grouped: dict[str, list[str]] = {}
            for n in self._nodes:
                v = n.topology_value(key)
                if v is not None:
                    grouped.setdefault(v, []).append(n.name)
            domains = self._domains[key] = grouped
        return domains


__all__ = ["InDomain", "PodTopology", "anti_affinity_refusal", "term_keys"]
