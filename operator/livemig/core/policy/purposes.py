"""The four purpose sections, of which a policy sets the one its `purpose` names: `maintenance` (with its window),
`evacuation`, `loadBalancing` (high/target thresholds, hysteresis) and `consolidation` (low utilization, headroom),
with the CRD's cross-field rules (CEL) of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from livemig.core.policy.reader import DATE_TIME_RE, SECONDS_PER_HOUR, Reader, enum_values
from livemig.core.policy.selection import read_label_selector
from livemig.core.policy.spec import (
    Comparison,
    Consolidation,
    Evacuation,
    LoadBalancing,
    Maintenance,
    PressureThresholds,
    ResourceFractions,
    Threshold,
    TimeWindow,
)


def read_maintenance(r: Reader, spec: Mapping[str, Any], path: str) -> Maintenance | None:
    where = f"{path}.maintenance"
    raw = r.section(
        spec, "maintenance", path, ("nodeNames", "nodeLabelSelector", "cordoned", "window", "maxNodesInParallel")
    )
    if raw is None:
        return None
    node_names = r.string_list(raw, "nodeNames", where, max_items=256, min_length=1, max_length=253, unique=True)
    selector = read_label_selector(r, raw, "nodeLabelSelector", where)
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


def read_evacuation(r: Reader, spec: Mapping[str, Any], path: str) -> Evacuation | None:
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


def read_load_balancing(r: Reader, spec: Mapping[str, Any], path: str) -> LoadBalancing | None:
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


def read_consolidation(r: Reader, spec: Mapping[str, Any], path: str) -> Consolidation | None:
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
