"""Parse and validate a livemig MigrationPolicy manifest with the CRD's rules, collecting every error.

The rules mirror crds/livemig.io_migrationpolicies.yaml exactly: the structural schema (types, enums, bounds,
patterns, unknown fields as under fieldValidation=Strict), its defaults, and its CEL rules (x-kubernetes-validations).
tests/data/invalid_policies.yaml lists bad policies that both this parser and the API server must reject, naming the
same field; a test also checks that what the API server defaults parses to the same LivemigPolicy.

Errors are SpecError(path, problem) with the API server's dotted paths (`spec.limits.cooldown`,
`spec.selector.vmiSelector.matchExpressions[0].values`), raised together as SpecErrors.

This module reads the manifest's top level, its metadata and which purpose section it must set; each family of spec
sections has its own module: selection.py (selectors), purposes.py (maintenance, evacuation, loadBalancing,
consolidation), execution.py (technique, limits), prometheus.py; all read fields through reader.py's `Reader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from livemig.core.errors import SpecError, SpecErrors
from livemig.core.policy.execution import read_limits, read_technique
from livemig.core.policy.prometheus import read_prometheus
from livemig.core.policy.purposes import read_consolidation, read_evacuation, read_load_balancing, read_maintenance
from livemig.core.policy.reader import (
    DNS_SUBDOMAIN_RE,
    LABEL_NAME_RE,
    LABEL_VALUE_RE,
    SECONDS_PER_HOUR,
    Reader,
    enum_values,
    kind_of,
)
from livemig.core.policy.selection import read_label_selector, read_vmi_selector
from livemig.core.policy.spec import API_VERSION, KIND, LivemigPolicy
from livemig.core.vocabulary import Purpose

__all__ = ["load_policy", "parse_policy"]

_SPEC_FIELDS = (
    "purpose",
    "selector",
    "nodeSelector",
    "maintenance",
    "evacuation",
    "loadBalancing",
    "consolidation",
    "technique",
    "limits",
    "dryRun",
    "interval",
    "prometheus",
)
_SECTION_BY_PURPOSE = {
    Purpose.MAINTENANCE: "maintenance",
    Purpose.EVACUATION: "evacuation",
    Purpose.LOAD_BALANCING: "loadBalancing",
    Purpose.CONSOLIDATION: "consolidation",
}


def parse_policy(manifest: Mapping[str, Any]) -> LivemigPolicy:
    """Validate a MigrationPolicy manifest (as a dict) and return it defaulted; raise SpecErrors naming every problem.

    `status` is not validated (livemig writes it); `metadata` only for its name, labels and generation.
    """
    r = Reader()
    top = r.mapping(manifest, "policy", None)
    if top is None:
        raise SpecErrors(r.errors)
    for key in top:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            r.fail(str(key), "unknown field (known: apiVersion, kind, metadata, spec, status)")
    if top.get("apiVersion") != API_VERSION:
        r.fail("apiVersion", f"must be {API_VERSION}, not {top.get('apiVersion')!r}")
    if top.get("kind") != KIND:
        r.fail("kind", f"must be {KIND}, not {top.get('kind')!r}")
    name, labels, generation = _metadata(r, top.get("metadata"))

    spec = r.mapping(top.get("spec"), "spec", _SPEC_FIELDS) if top.get("spec") is not None else None
    if top.get("spec") is None:
        r.fail("spec", "required")
    if spec is None:
        raise SpecErrors(r.errors)

    purpose = r.enum(spec, "purpose", "spec", Purpose, enum_values(Purpose), required=True)
    if purpose is not None:
        for other_purpose, section in _SECTION_BY_PURPOSE.items():
            present = spec.get(section) is not None
            if other_purpose is purpose and not present:
                r.fail(f"spec.{section}", f"required when purpose is {purpose.value}")
            elif other_purpose is not purpose and present:
                r.fail(f"spec.{section}", f"allowed only when purpose is {other_purpose.value}")

    selector = read_vmi_selector(r, spec, "spec")
    node_selector = read_label_selector(r, spec, "nodeSelector", "spec")
    maintenance = read_maintenance(r, spec, "spec")
    evacuation = read_evacuation(r, spec, "spec")
    load_balancing = read_load_balancing(r, spec, "spec")
    consolidation = read_consolidation(r, spec, "spec")
    technique = read_technique(r, spec, "spec")
    limits = read_limits(r, spec, "spec")
    dry_run = r.boolean(spec, "dryRun", "spec", default=False)
    interval_s = r.duration(
        spec,
        "interval",
        "spec",
        default="1m",
        minimum_s=5.0,
        maximum_s=24 * SECONDS_PER_HOUR,
        bounds_text="between 5s and 24h",
    )
    prometheus = read_prometheus(r, spec, "spec")

    if r.errors:
        raise SpecErrors(r.errors)
    if (
        name is None
        or purpose is None
        or technique is None
        or limits is None
        or dry_run is None
        or interval_s is None
        or isinstance(prometheus, bool)
    ):  # every None above comes with an error recorded; reaching this is a bug in this module
        raise AssertionError("parse_policy: a field was rejected without an error")
    return LivemigPolicy(
        name=name,
        purpose=purpose,
        selector=selector,
        node_selector=node_selector,
        maintenance=maintenance,
        evacuation=evacuation,
        load_balancing=load_balancing,
        consolidation=consolidation,
        technique=technique,
        limits=limits,
        dry_run=dry_run,
        interval_s=interval_s,
        prometheus=prometheus,
        generation=generation,
        labels=MappingProxyType(labels),
    )


def _metadata(r: Reader, raw: Any) -> tuple[str | None, dict[str, str], int | None]:
    if raw is None:
        r.fail("metadata.name", "required")
        return None, {}, None
    metadata = r.mapping(raw, "metadata", None)
    if metadata is None:
        return None, {}, None
    name = r.string(
        metadata,
        "name",
        "metadata",
        required=True,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_RE,
        pattern_hint="a DNS subdomain (lower-case letters, digits, '-', '.')",
    )
    labels = _metadata_labels(r, metadata.get("labels") or {})
    generation = metadata.get("generation")
    return name, labels, generation if isinstance(generation, int) and not isinstance(generation, bool) else None


def _metadata_labels(r: Reader, raw: Any) -> dict[str, str]:
    """`metadata.labels` as the API server validates them (keys `[prefix/]name`, values of at most 63 label
    characters): the policy's labels reach its status, Events and metrics, so no hostile string passes here."""
    where = "metadata.labels"
    if not isinstance(raw, Mapping):
        r.fail(where, f"must be an object, not {kind_of(raw)}")
        return {}
    labels: dict[str, str] = {}
    for key, value in raw.items():
        prefix, _, name = str(key).rpartition("/")
        if (
            not LABEL_NAME_RE.fullmatch(name)
            or len(name) > 63
            or (prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN_RE.fullmatch(prefix)))
            or (not prefix and "/" in str(key))
        ):
            r.fail(where, f"key {key!r} must be a label name ([prefix/]name: up to 63 letters, digits, '-', '_', '.')")
        elif not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE_RE.fullmatch(value):
            r.fail(where, f"value {value!r} of {key} must be empty or up to 63 letters, digits, '-', '_', '.'")
        else:
            labels[str(key)] = value
    return labels


def load_policy(path: str | Path) -> LivemigPolicy:
    """Read one MigrationPolicy from a YAML or JSON file (the only I/O here) and parse it."""
    location = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecErrors([SpecError(location, f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError(location, f"not valid YAML: {exc}")]) from exc
    if len(documents) != 1:
        raise SpecErrors([SpecError(location, f"must hold exactly one MigrationPolicy, found {len(documents)}")])
    return parse_policy(documents[0])
