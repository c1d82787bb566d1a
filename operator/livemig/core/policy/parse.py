"""Parse and validate a livemig MigrationPolicy manifest with the CRD's rules, collecting every error.

The rules mirror crds/livemig.io_migrationpolicies.yaml exactly: the structural schema (types, enums, bounds,
patterns, unknown fields as under fieldValidation=Strict), its defaults, and its CEL rules (x-kubernetes-validations).
tests/data/invalid_policies.yaml lists bad policies that both this parser and the API server must reject, naming the
same field; a test also checks that what the API server defaults parses to the same LivemigPolicy.

Errors are SpecError(path, problem) with the API server's dotted paths (`spec.limits.cooldown`,
`spec.selector.vmiSelector.matchExpressions[0].values`), raised together as SpecErrors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from livemig.core.errors import SpecError, SpecErrors
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
from livemig.core.units import parse_duration, parse_quantity
from livemig.core.vocabulary import Objective, Purpose, TechniqueMode

__all__ = ["load_policy", "parse_policy"]

E = TypeVar("E")

DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
QUANTITY_RE = re.compile(
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# RFC 3339 with upper-case T and Z: the API server's date-time format also takes lower case, but the CEL rule on the
# window (timestamp()) does not, so the CRD rejects it in the end.
# re.ASCII: the API server's patterns are Go regexps, whose \d and \s are ASCII only (fullmatch, not match: Python's
# `$` also matches before a final newline, Go's does not).
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.ASCII)
URL_RE = re.compile(r"^https?://[^\s]+$", re.ASCII)
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SMALL_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3}

SECONDS_PER_HOUR = 3600.0


class _Reader:
    """Reads fields of one manifest, recording every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def fail(self, path: str, problem: str) -> None:
        self.errors.append(SpecError(path, problem))

    # -- shapes ------------------------------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: Sequence[str] | None) -> Mapping[str, Any] | None:
        """An object; with `allowed`, every other key is an unknown field (as fieldValidation=Strict reports)."""
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, not {_kind(value)}")
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(f"{path}.{key}", f"unknown field (known: {', '.join(allowed)})")
        return value

    def section(
        self, parent: Mapping[str, Any], key: str, path: str, allowed: Sequence[str], *, default_empty: bool = False
    ) -> Mapping[str, Any] | None:
        if key not in parent or parent[key] is None:
            return {} if default_empty else None
        return self.mapping(parent[key], f"{path}.{key}", allowed)

    def string(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        default: str | None = None,
        min_length: int = 0,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        pattern_hint: str = "",
    ) -> str | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, "required")
            return default
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {_kind(value)}")
            return None
        if len(value) < min_length:
            self.fail(where, f"must be at least {min_length} characters long")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"must be at most {max_length} characters long")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(where, f"must be {pattern_hint or 'of the form ' + pattern.pattern}, not {value!r}")
            return None
        return value

    def enum(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        enum_type: Callable[[str], E],
        allowed: Sequence[str],
        *,
        required: bool = False,
        default: E | None = None,
    ) -> E | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, f"required (one of {', '.join(allowed)})")
            return default
        if not isinstance(value, str) or value not in allowed:
            self.fail(where, f"must be one of {', '.join(allowed)}, not {value!r}")
            return None
        return enum_type(value)

    def boolean(self, parent: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool | None:
        value = parent.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(f"{path}.{key}", f"must be true or false, not {_kind(value)} {value!r}")
            return None
        return value

    def integer(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: the API server takes 3.0 for an integer field too
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, not {_kind(value)} {value!r}")
            return None
        if minimum is not None and value < minimum:
            self.fail(where, f"must be at least {minimum}, got {value}")
            return None
        if maximum is not None and value > maximum:
            self.fail(where, f"must be at most {maximum}, got {value}")
            return None
        return value

    def number(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(where, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(where, f"must be a number, not {_kind(value)} {value!r}")
            return None
        number = float(value)
        if minimum is not None and (number < minimum or (exclusive_minimum and number == minimum)):
            self.fail(where, f"must be {'greater than' if exclusive_minimum else 'at least'} {minimum:g}, got {value}")
            return None
        if maximum is not None and number > maximum:
            self.fail(where, f"must be at most {maximum:g}, got {value}")
            return None
        return number

    def duration(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: str | None,
        minimum_s: float = 0.0,
        maximum_s: float | None = None,
        exclusive_minimum: bool = False,
        bounds_text: str = "",
    ) -> float | None:
        """A Go-style duration string (`300ms`, `10m`, `1h30m`) as seconds, within bounds."""
        where = f"{path}.{key}"
        text = self.string(
            parent,
            key,
            path,
            default=default,
            max_length=32,
            pattern=DURATION_RE,
            pattern_hint="a duration like 30s, 10m or 1h30m",
        )
        if text is None:
            return None
        seconds = parse_duration(text, where)
        too_small = seconds < minimum_s or (exclusive_minimum and seconds == minimum_s)
        if too_small or (maximum_s is not None and seconds > maximum_s):
            self.fail(where, f"must be {bounds_text}, got {text!r}")
            return None
        return seconds

    def string_list(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        max_items: int,
        min_length: int = 0,
        max_length: int | None = None,
        unique: bool = False,
    ) -> tuple[str, ...] | None:
        where = f"{path}.{key}"
        value = parent.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(where, f"must be a list, not {_kind(value)}")
            return None
        if len(value) > max_items:
            self.fail(where, f"must have at most {max_items} items, got {len(value)}")
            return None
        items: list[str] = []
        ok = True
        for index, item in enumerate(value):
            item_path = f"{where}[{index}]"
            if not isinstance(item, str):
                self.fail(item_path, f"must be a string, not {_kind(item)}")
                ok = False
            elif len(item) < min_length or (max_length is not None and len(item) > max_length):
                self.fail(item_path, f"must be {min_length} to {max_length} characters long")
                ok = False
            elif unique and item in items:
                self.fail(item_path, f"duplicate value {item!r}")
                ok = False
            else:
                items.append(item)
        return tuple(items) if ok else None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _values(enum_type: type[Any]) -> tuple[str, ...]:
    return tuple(member.value for member in enum_type)


# --- sections -------------------------------------------------------------------------------------------------------


def _label_selector(r: _Reader, parent: Mapping[str, Any], key: str, path: str) -> LabelSelector | None:
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
                    r.fail(f"{where}.matchLabels.{label}", f"must be a string, not {_kind(value)}")
                elif len(value) > 63:
                    r.fail(f"{where}.matchLabels.{label}", "must be at most 63 characters long")
                else:
                    labels[str(label)] = value
    requirements: list[LabelSelectorRequirement] = []
    expressions = raw.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            r.fail(f"{where}.matchExpressions", f"must be a list, not {_kind(expressions)}")
        elif len(expressions) > 32:
            r.fail(f"{where}.matchExpressions", f"must have at most 32 items, got {len(expressions)}")
        else:
            for index, item in enumerate(expressions):
                requirement = _requirement(r, item, f"{where}.matchExpressions[{index}]")
                if requirement is not None:
                    requirements.append(requirement)
    return LabelSelector(match_labels=MappingProxyType(labels), match_expressions=tuple(requirements))


def _requirement(r: _Reader, item: Any, path: str) -> LabelSelectorRequirement | None:
    raw = r.mapping(item, path, ("key", "operator", "values"))
    if raw is None:
        return None
    key = r.string(raw, "key", path, required=True, min_length=1, max_length=317)
    operator = r.enum(raw, "operator", path, SelectorOperator, _values(SelectorOperator), required=True)
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


def _maintenance(r: _Reader, spec: Mapping[str, Any], path: str) -> Maintenance | None:
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


def _window(r: _Reader, parent: Mapping[str, Any], path: str) -> TimeWindow | bool | None:
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


def _evacuation(r: _Reader, spec: Mapping[str, Any], path: str) -> Evacuation | None:
    where = f"{path}.evacuation"
    raw = r.section(spec, "evacuation", path, ("healthQuery", "nodeLabel", "threshold", "comparison", "for"))
    if raw is None:
        return None
    query = r.string(raw, "healthQuery", where, required=True, min_length=1, max_length=4096)
    node_label = r.string(raw, "nodeLabel", where, default="node", min_length=1, max_length=128)
    threshold = r.number(raw, "threshold", where, required=True)
    comparison = r.enum(raw, "comparison", where, Comparison, _values(Comparison), default=Comparison.GREATER_THAN)
    for_s = r.duration(raw, "for", where, default="2m", maximum_s=24 * SECONDS_PER_HOUR, bounds_text="at most 24h")
    if query is None or node_label is None or threshold is None or comparison is None or for_s is None:
        return None
    return Evacuation(
        health_query=query, node_label=node_label, threshold=threshold, comparison=comparison, for_s=for_s
    )


def _threshold(r: _Reader, parent: Mapping[str, Any], key: str, path: str) -> Threshold | bool | None:
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


def _load_balancing(r: _Reader, spec: Mapping[str, Any], path: str) -> LoadBalancing | None:
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


def _fractions(r: _Reader, raw: Mapping[str, Any], path: str, default: float | None) -> ResourceFractions | None:
    cpu = r.number(raw, "cpu", path, default=default, minimum=0.0, maximum=1.0)
    memory = r.number(raw, "memory", path, default=default, minimum=0.0, maximum=1.0)
    bad = (raw.get("cpu") is not None and cpu is None) or (raw.get("memory") is not None and memory is None)
    return None if bad else ResourceFractions(cpu=cpu, memory=memory)


def _consolidation(r: _Reader, spec: Mapping[str, Any], path: str) -> Consolidation | None:
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


def _bandwidth(r: _Reader, raw: Mapping[str, Any], path: str) -> float | bool | None:
    """bandwidthPerMigration in bytes/s: None when unset, False when invalid."""
    where = f"{path}.bandwidthPerMigration"
    value = raw.get("bandwidthPerMigration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {_kind(value)} {value!r}")
        return False
    if isinstance(value, int):
        if value < 0:
            r.fail(where, f"must not be negative, got {value}")
            return False
        return float(value)
    if not QUANTITY_RE.fullmatch(value):
        r.fail(where, f"must be a quantity like 64Mi (bytes per second), not {value!r}")
        return False
    if value[-1] in _SMALL_SUFFIX and not value[-2:-1].isalpha():
        return float(value[:-1]) * _SMALL_SUFFIX[value[-1]]
    return parse_quantity(value, where)


def _technique(r: _Reader, spec: Mapping[str, Any], path: str) -> TechniquePolicy | None:
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
    mode = r.enum(raw, "mode", where, TechniqueMode, _values(TechniqueMode), default=TechniqueMode.AUTO)
    objective = r.enum(raw, "objective", where, Objective, _values(Objective), default=Objective.BALANCED)
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


def _limits(r: _Reader, spec: Mapping[str, Any], path: str) -> Limits | None:
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


def _prometheus(r: _Reader, spec: Mapping[str, Any], path: str) -> PrometheusOverrides | bool | None:
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
    r = _Reader()
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

    purpose = r.enum(spec, "purpose", "spec", Purpose, _values(Purpose), required=True)
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


def _metadata(r: _Reader, raw: Any) -> tuple[str | None, dict[str, str], int | None]:
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


def _metadata_labels(r: _Reader, raw: Any) -> dict[str, str]:
    """`metadata.labels` as the API server validates them (keys `[prefix/]name`, values of at most 63 label
    characters): the policy's labels reach its status, Events and metrics, so no hostile string passes here."""
    where = "metadata.labels"
    if not isinstance(raw, Mapping):
        r.fail(where, f"must be an object, not {_kind(raw)}")
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
