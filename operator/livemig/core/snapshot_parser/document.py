"""A whole snapshot (or scenario) document: its top-level keys, and the order its sections are read in.

`load_snapshot` and `read_document` are the package's only I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from livemig.core.cluster import API_VERSION, KINDS, SCENARIO_KEYS, ClusterSnapshot, Namespace, Node, Vmi
from livemig.core.errors import SpecError, SpecErrors, value_kind
from livemig.core.snapshot_parser.fields import parse_timestamp
from livemig.core.snapshot_parser.kubevirt_section import KubevirtSectionReader
from livemig.core.snapshot_parser.nodes import NodeReader
from livemig.core.snapshot_parser.vmis import VmiReader


def load_snapshot(path: str | Path) -> ClusterSnapshot:
    """Read a YAML or JSON snapshot (or scenario) file.  The only I/O in this module."""
    return parse_snapshot(read_document(path))


def read_document(path: str | Path) -> Mapping[str, object]:
    """Read one YAML/JSON mapping from a file; problems become SpecError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(p), f"cannot read file: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SpecError(str(p), f"not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(doc, Mapping):
        raise SpecError(str(p), "must hold one mapping (apiVersion, kind, nodes, vmis, ...)")
    return doc


_TOP_KEYS = ("apiVersion", "kind", "metadata", "description", "time", "kubevirt", "namespaces", "nodes", "vmis")


class _Parser(KubevirtSectionReader, NodeReader, VmiReader):
    """The section readers over one error list, and the timestamps seen (the snapshot's time when it names none)."""

    def namespaces(self, value: object, path: str) -> tuple[Namespace, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list of {name, labels}")
            return ()
        out: list[Namespace] = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            m = self.mapping(item, p, ("name", "labels"))
            if m is None:
                continue
            name = self.string(m.get("name"), f"{p}.name")
            labels = self.labels(m.get("labels"), f"{p}.labels")
            if name is not None:
                if name in seen:
                    self.fail(f"{p}.name", f"duplicate namespace {name!r}")
                seen.add(name)
                out.append(Namespace(name, labels))
        return tuple(out)


def parse_snapshot(doc: Mapping[str, object]) -> ClusterSnapshot:
    """Validate a snapshot (or scenario) document; raise SpecErrors listing every problem with its dotted path."""
    p = _Parser()
    if not isinstance(doc, Mapping):
        raise SpecErrors([SpecError("(document)", f"must be an object, not {value_kind(doc)}")])
    for key in doc:
        if key not in _TOP_KEYS and key not in SCENARIO_KEYS:
            p.fail(str(key), f"unknown field (expected one of: {', '.join((*_TOP_KEYS, *sorted(SCENARIO_KEYS)))})")
    api = doc.get("apiVersion")
    if api != API_VERSION:
        p.fail("apiVersion", f"must be {API_VERSION}, not {api!r}")
    kind = doc.get("kind")
    if kind not in KINDS:
        p.fail("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    kubevirt, launcher = p.kubevirt(doc.get("kubevirt"), "kubevirt")
    namespaces = p.namespaces(doc.get("namespaces"), "namespaces")

    nodes: list[Node] = []
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        p.fail("nodes", "must be a non-empty list of nodes")
        raw_nodes = []
    node_names_declared: set[str] = set()
    for i, item in enumerate(raw_nodes):
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            if item["name"] in node_names_declared:
                p.fail(f"nodes[{i}].name", f"duplicate node {item['name']!r}")
            node_names_declared.add(str(item["name"]))
        node = p.node(item, f"nodes[{i}]")
        if node is not None:
            nodes.append(node)

    vmis: list[Vmi] = []
    raw_vmis = doc.get("vmis", [])
    if raw_vmis is None:
        raw_vmis = []
    if not isinstance(raw_vmis, list):
        p.fail("vmis", "must be a list of VMIs")
        raw_vmis = []
    keys: set[str] = set()
    node_map = {n: Node(n, 1, 1) for n in node_names_declared}
    for i, item in enumerate(raw_vmis):
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            key = f"{item.get('namespace', 'default')}/{item['name']}"
            if key in keys:
                p.fail(f"vmis[{i}].name", f"duplicate VMI {key!r}")
            keys.add(key)
        vmi = p.vmi(item, f"vmis[{i}]", node_map)
        if vmi is not None:
            vmis.append(vmi)

    time_s: float = 0.0
    if doc.get("time") is not None:
        t = parse_timestamp(doc["time"], "time", p.errors)
        time_s = t if t is not None else 0.0
    elif p.timestamps:
        time_s = max(p.timestamps)
    if p.errors:
        raise SpecErrors(p.errors)
    return ClusterSnapshot(time_s, kubevirt, namespaces, tuple(nodes), tuple(vmis), launcher=launcher)
