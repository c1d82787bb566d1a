"""Parse and validate a livemig MigrationPolicy manifest with the CRD's rules, collecting every error.

The rules mirror crds/livemig.io_migrationpolicies.yaml exactly: the structural schema (types, enums, bounds,
patterns, unknown fields as under fieldValidation=Strict), its defaults, and its CEL rules (x-kubernetes-validations).
tests/data/invalid_policies.yaml lists bad policies that both this parser and the API server must reject, naming the
same field; a test also checks that what the API server defaults parses to the same LivemigPolicy.

Errors are SpecError(path, problem) with the API server's dotted paths (`spec.limits.cooldown`,
`spec.selector.vmiSelector.matchExpressions[0].values`), raised together as SpecErrors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from livemig.core.errors import SpecError, SpecErrors
from livemig.core.policy.reader import (
    DATE_TIME_RE,
    DNS_SUBDOMAIN_RE,
    LABEL_NAME_RE,
    LABEL_VALUE_RE,
    QUANTITY_RE,
    SECONDS_PER_HOUR,
    SMALL_SUFFIX,
    URL_RE,
    Reader,
    enum_values,
    kind_of,
)
from livemig.core.policy.spec import (
    API_VERSION,
    KIND,
    Comparison,
    Consolidation,
    Evacuation,
    Limits,
    LivemigPolicy,
    LoadBalancing,
    Maintenance,
    PressureThresholds,
    PrometheusOverrides,
    PrometheusQueries,
    ResourceFractions,
    TechniquePolicy,
    Threshold,
    TimeWindow,
    VmiSelector,
)
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, SelectorOperator
from livemig.core.units import parse_quantity
from livemig.core.vocabulary import Objective, Purpose, TechniqueMode

__all__ = ["load_policy", "parse_policy"]

# --- sections -------------------------------------------------------------------------------------------------------


def _label_selector(r: Reader, parent: Mapping[str, Any], key: str, path: str) -> LabelSelector | None:
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


def _maintenance(r: Reader, spec: Mapping[str, Any], path: str) -> Maintenance | None:
    where = f"{path}.maintenance"
    raw = r.section(
        spec, "maintenance", path, ("nodeNames", "nodeLabelSelector", "cordoned", "window", "maxNodesInParallel")
    )
    if raw is None:
        return None
    node_names = r.string_list(raw, "nodeNames", where, max_items=256, min_length=1, max_length=253, unique=True)
    selector = _label_selector(r, raw, "nodeLabelSelector", where)
    cordoned = r.boolean(raw, "cordoned", where, default=False)
    window = _window(r, raw, where)
    parallel = r.integer(raw, "maxNodesInParallel", where, default=1, minimum=1, maximum=100)
    has_selector = raw.get("nodeLabelSelector") is not None
    if node_names is not None and cordoned is not None and not (node_names or has_selector or cordoned):
        r.fail(where, "needs a trigger: nodeNames, nodeLabelSelector or cordoned: true")
        return None
    if node_names is None or cordoned is None or parallel is None or window is False:
        return None
    return Maintenance(
        node_names=node_names,
        node_label_selector=selector,
        cordoned=cordoned,
        window=window if isinstance(window, TimeWindow) else None,
        max_nodes_in_parallel=parallel,
    )


def _window(r: Reader, parent: Mapping[str, Any], path: str) -> TimeWindow | bool | None:
    """The window, None when absent, False when invalid."""
    where = f"{path}.window"
    raw = r.section(parent, "window", path, ("start", "end"))
    if raw is None:
        return None if parent.get("window") is None else False
    times: dict[str, float] = {}
    for key in ("start", "end"):
        text = r.string(
            raw,
            key,
            where,
            required=True,
            max_length=64,
            pattern=DATE_TIME_RE,
            pattern_hint="an RFC 3339 time like 2026-11-28T02:00:00Z",
        )
        if text is not None:
            try:
                times[key] = datetime.fromisoformat(text).timestamp()
            except ValueError:
                r.fail(f"{where}.{key}", f"must be an RFC 3339 time like 2026-11-28T02:00:00Z, not {text!r}")
    if len(times) != 2:
        return False
    if times["end"] <= times["start"]:
        r.fail(f"{where}.end", "must be after start")
        return False
    return TimeWindow(start_s=times["start"], end_s=times["end"])


def _evacuation(r: Reader, spec: Mapping[str, Any], path: str) -> Evacuation | None:
    where = f"{path}.evacuation"
    raw = r.section(spec, "evacuation", path, ("healthQuery", "nodeLabel", "threshold", "comparison", "for"))
    if raw is None:
        return None
    query = r.string(raw, "healthQuery", where, required=True, min_length=1, max_length=4096)
    node_label = r.string(raw, "nodeLabel", where, default="node", min_length=1, max_length=128)
    threshold = r.number(raw, "threshold", where, required=True)
    comparison = r.enum(raw, "comparison", where, Comparison, enum_values(Comparison), default=Comparison.GREATER_THAN)
    for_s = r.duration(raw, "for", where, default="2m", maximum_s=24 * SECONDS_PER_HOUR, bounds_text="at most 24h")
    if query is None or node_label is None or threshold is None or comparison is None or for_s is None:
        return None
    return Evacuation(
        health_query=query, node_label=node_label, threshold=threshold, comparison=comparison, for_s=for_s
    )


def _threshold(r: Reader, parent: Mapping[str, Any], key: str, path: str) -> Threshold | bool | None:
    """A high/target pair; None when absent, False when invalid."""
    where = f"{path}.{key}"
    if parent.get(key) is None:
        return None
    raw = r.mapping(parent[key], where, ("high", "target"))
    if raw is None:
        return False
    high = r.number(raw, "high", where, required=True, minimum=0.0, exclusive_minimum=True, maximum=1.0)
    target = r.number(raw, "target", where, required=True, minimum=0.0, maximum=1.0)
    if high is None or target is None:
        return False
    if not target < high:
        r.fail(f"{where}.target", f"must be below high ({high:g}), got {target:g}")
        return False
    return Threshold(high=high, target=target)


def _load_balancing(r: Reader, spec: Mapping[str, Any], path: str) -> LoadBalancing | None:
    where = f"{path}.loadBalancing"
    raw = r.section(spec, "loadBalancing", path, ("cpu", "memory", "pressure", "hysteresis", "averagingWindow"))
    if raw is None:
        return None
    cpu = _threshold(r, raw, "cpu", where)
    memory = _threshold(r, raw, "memory", where)
    pressure: PressureThresholds | bool | None = None
    named: dict[str, Threshold | bool | None] = {"cpu": cpu, "memory": memory}
    if raw.get("pressure") is not None:
        pressure_raw = r.mapping(raw["pressure"], f"{where}.pressure", ("cpu", "memory", "io"))
        if pressure_raw is None:
            pressure = False
        else:
            if not any(pressure_raw.get(k) is not None for k in pressure_raw):
                r.fail(f"{where}.pressure", "must set at least one of cpu, memory, io")
            parts = {k: _threshold(r, pressure_raw, k, f"{where}.pressure") for k in ("cpu", "memory", "io")}
            named.update({f"pressure.{k}": v for k, v in parts.items()})
            pressure = (
                False
                if any(v is False for v in parts.values()) or not pressure_raw
                else PressureThresholds(**{k: v for k, v in parts.items() if isinstance(v, Threshold)})
            )
    hysteresis = r.number(raw, "hysteresis", where, default=0.05, minimum=0.0, maximum=0.5)
    window_s = r.duration(
        raw, "averagingWindow", where, default="5m", maximum_s=24 * SECONDS_PER_HOUR, bounds_text="at most 24h"
    )
    if raw.get("cpu") is None and raw.get("memory") is None and raw.get("pressure") is None:
        r.fail(where, "needs at least one of cpu, memory, pressure")
        return None
    if hysteresis is not None:
        for name, threshold in named.items():
            if isinstance(threshold, Threshold) and not hysteresis < threshold.high - threshold.target:
                r.fail(
                    f"{where}.hysteresis",
                    f"must be smaller than {name}.high - {name}.target "
                    f"({threshold.high - threshold.target:g}), got {hysteresis:g}",
                )
                hysteresis = None
                break
    if False in (cpu, memory, pressure) or hysteresis is None or window_s is None:
        return None
    return LoadBalancing(
        cpu=cpu if isinstance(cpu, Threshold) else None,
        memory=memory if isinstance(memory, Threshold) else None,
        pressure=pressure if isinstance(pressure, PressureThresholds) else None,
        hysteresis=hysteresis,
        averaging_window_s=window_s,
    )


def _fractions(r: Reader, raw: Mapping[str, Any], path: str, default: float | None) -> ResourceFractions | None:
    cpu = r.number(raw, "cpu", path, default=default, minimum=0.0, maximum=1.0)
    memory = r.number(raw, "memory", path, default=default, minimum=0.0, maximum=1.0)
    bad = (raw.get("cpu") is not None and cpu is None) or (raw.get("memory") is not None and memory is None)
    return None if bad else ResourceFractions(cpu=cpu, memory=memory)


def _consolidation(r: Reader, spec: Mapping[str, Any], path: str) -> Consolidation | None:
    where = f"{path}.consolidation"
    raw = r.section(spec, "consolidation", path, ("lowUtilization", "headroom", "maxNodesPerCycle", "cordonEmptied"))
    if raw is None:
        return None
    low: ResourceFractions | None = None
    if raw.get("lowUtilization") is None:
        r.fail(f"{where}.lowUtilization", "required")
    else:
        low_raw = r.mapping(raw["lowUtilization"], f"{where}.lowUtilization", ("cpu", "memory"))
        if low_raw is not None:
            if not any(low_raw.get(k) is not None for k in ("cpu", "memory")):
                r.fail(f"{where}.lowUtilization", "must set at least one of cpu, memory")
            else:
                low = _fractions(r, low_raw, f"{where}.lowUtilization", None)
    headroom_raw = r.section(raw, "headroom", where, ("cpu", "memory"), default_empty=True)
    headroom = _fractions(r, headroom_raw, f"{where}.headroom", 0.2) if headroom_raw is not None else None
    max_nodes = r.integer(raw, "maxNodesPerCycle", where, default=1, minimum=1, maximum=100)
    cordon = r.boolean(raw, "cordonEmptied", where, default=False)
    if low is not None and headroom is not None:
        for resource in ("cpu", "memory"):
            low_value, room = getattr(low, resource), getattr(headroom, resource)
            if low_value is not None and room is not None and not low_value + room < 1.0:
                r.fail(
                    f"{where}.lowUtilization.{resource}",
                    f"lowUtilization.{resource} + headroom.{resource} must be below 1, got {low_value + room:g}",
                )
                low = None
                break
    if low is None or headroom is None or max_nodes is None or cordon is None:
        return None
    return Consolidation(low_utilization=low, headroom=headroom, max_nodes_per_cycle=max_nodes, cordon_emptied=cordon)


def _bandwidth(r: Reader, raw: Mapping[str, Any], path: str) -> float | bool | None:
    """bandwidthPerMigration in bytes/s: None when unset, False when invalid."""
    where = f"{path}.bandwidthPerMigration"
    value = raw.get("bandwidthPerMigration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {kind_of(value)} {value!r}")
        return False
    if isinstance(value, int):
        if value < 0:
            r.fail(where, f"must not be negative, got {value}")
            return False
        return float(value)
    if not QUANTITY_RE.fullmatch(value):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {value!r}")
        return False
    if value[-1] in SMALL_SUFFIX and not value[-2:-1].isalpha():
        return float(value[:-1]) * SMALL_SUFFIX[value[-1]]
    return parse_quantity(value, where)


def _technique(r: Reader, spec: Mapping[str, Any], path: str) -> TechniquePolicy | None:
    where = f"{path}.technique"
    raw = r.section(
        spec,
        "technique",
        path,
        (
            "mode",
            "objective",
            "allowPostCopy",
            "allowAutoConverge",
            "maxDowntime",
            "bandwidthPerMigration",
            "completionTimeoutPerGiB",
        ),
        default_empty=True,
    )
    if raw is None:
        return None
    mode = r.enum(raw, "mode", where, TechniqueMode, enum_values(TechniqueMode), default=TechniqueMode.AUTO)
    objective = r.enum(raw, "objective", where, Objective, enum_values(Objective), default=Objective.BALANCED)
    post_copy = r.boolean(raw, "allowPostCopy", where, default=False)
    auto_converge = r.boolean(raw, "allowAutoConverge", where, default=False)
    max_downtime_s = r.duration(
        raw,
        "maxDowntime",
        where,
        default=None,
        maximum_s=2000.0,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 2000s",
    )
    bandwidth = _bandwidth(r, raw, where)
    timeout = r.integer(raw, "completionTimeoutPerGiB", where, minimum=0)
    if mode is TechniqueMode.POST_COPY and post_copy is False:
        r.fail(f"{where}.mode", "mode PostCopy requires allowPostCopy: true")
        mode = None
    if mode is TechniqueMode.AUTO_CONVERGE and auto_converge is False:
        r.fail(f"{where}.mode", "mode AutoConverge requires allowAutoConverge: true")
        mode = None
    if mode is None or objective is None or post_copy is None or auto_converge is None or bandwidth is False:
        return None
    if (raw.get("maxDowntime") is not None and max_downtime_s is None) or (
        raw.get("completionTimeoutPerGiB") is not None and timeout is None
    ):
        return None
    return TechniquePolicy(
        mode=mode,
        objective=objective,
        allow_post_copy=post_copy,
        allow_auto_converge=auto_converge,
        max_downtime_s=max_downtime_s,
        bandwidth_per_migration_bps=bandwidth if isinstance(bandwidth, float) else None,
        completion_timeout_per_gib=timeout,
    )


def _limits(r: Reader, spec: Mapping[str, Any], path: str) -> Limits | None:
    where = f"{path}.limits"
    raw = r.section(
        spec,
        "limits",
        path,
        ("maxConcurrentMigrations", "maxConcurrentMigrationsPerNode", "cooldown", "maxMigrationsPerVMI", "window"),
        default_empty=True,
    )
    if raw is None:
        return None
    cluster = r.integer(raw, "maxConcurrentMigrations", where, default=2, minimum=1, maximum=1000)
    per_node = r.integer(raw, "maxConcurrentMigrationsPerNode", where, default=1, minimum=1, maximum=100)
    cooldown = r.duration(
        raw, "cooldown", where, default="10m", maximum_s=720 * SECONDS_PER_HOUR, bounds_text="at most 720h"
    )
    per_vmi = r.integer(raw, "maxMigrationsPerVMI", where, default=3, minimum=1, maximum=1000)
    window = r.duration(
        raw,
        "window",
        where,
        default="1h",
        maximum_s=720 * SECONDS_PER_HOUR,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 720h",
    )
    if cluster is not None and per_node is not None and per_node > cluster:
        r.fail(
            f"{where}.maxConcurrentMigrationsPerNode",
            f"must not exceed maxConcurrentMigrations ({cluster}), got {per_node}",
        )
        return None
    if cluster is None or per_node is None or cooldown is None or per_vmi is None or window is None:
        return None
    return Limits(
        max_concurrent_migrations=cluster,
        max_concurrent_migrations_per_node=per_node,
        cooldown_s=cooldown,
        max_migrations_per_vmi=per_vmi,
        window_s=window,
    )


_QUERY_FIELDS = {
    "nodeCpuUtilization": "node_cpu_utilization",
    "nodeMemoryUtilization": "node_memory_utilization",
    "nodeCpuPressure": "node_cpu_pressure",
    "nodeMemoryPressure": "node_memory_pressure",
    "nodeIoPressure": "node_io_pressure",
    "vmiCpuUsage": "vmi_cpu_usage",
    "vmiMemoryUsage": "vmi_memory_usage",
    "vmiDirtyRate": "vmi_dirty_rate",
}


def _prometheus(r: Reader, spec: Mapping[str, Any], path: str) -> PrometheusOverrides | bool | None:
    where = f"{path}.prometheus"
    raw = r.section(spec, "prometheus", path, ("url", "timeout", "maxAge", "queries"))
    if raw is None:
        return None if spec.get("prometheus") is None else False
    url = r.string(raw, "url", where, max_length=2048, pattern=URL_RE, pattern_hint="an http:// or https:// URL")
    timeout = r.duration(
        raw,
        "timeout",
        where,
        default="10s",
        maximum_s=300.0,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 5m",
    )
    max_age = r.duration(
        raw,
        "maxAge",
        where,
        default="2m",
        maximum_s=SECONDS_PER_HOUR,
        exclusive_minimum=True,
        bounds_text="greater than 0 and at most 1h",
    )
    queries: dict[str, str | None] = {}
    bad_query = False
    queries_raw = r.section(raw, "queries", where, tuple(_QUERY_FIELDS), default_empty=True)
    if queries_raw is None:
        bad_query = True
    else:
        for camel, snake in _QUERY_FIELDS.items():
            queries[snake] = r.string(queries_raw, camel, f"{where}.queries", min_length=1, max_length=4096)
            bad_query |= queries_raw.get(camel) is not None and queries[snake] is None
    if (raw.get("url") is not None and url is None) or timeout is None or max_age is None or bad_query:
        return False
    return PrometheusOverrides(url=url, timeout_s=timeout, max_age_s=max_age, queries=PrometheusQueries(**queries))


# --- entry points ---------------------------------------------------------------------------------------------------

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

    selector_raw = r.section(spec, "selector", "spec", ("namespaceSelector", "vmiSelector"))
    selector = VmiSelector()
    if selector_raw is not None:
        selector = VmiSelector(
            namespace_selector=_label_selector(r, selector_raw, "namespaceSelector", "spec.selector"),
            vmi_selector=_label_selector(r, selector_raw, "vmiSelector", "spec.selector"),
        )
    node_selector = _label_selector(r, spec, "nodeSelector", "spec")
    maintenance = _maintenance(r, spec, "spec")
    evacuation = _evacuation(r, spec, "spec")
    load_balancing = _load_balancing(r, spec, "spec")
    consolidation = _consolidation(r, spec, "spec")
    technique = _technique(r, spec, "spec")
    limits = _limits(r, spec, "spec")
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
    prometheus = _prometheus(r, spec, "spec")

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
