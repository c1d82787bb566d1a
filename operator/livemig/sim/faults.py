"""Faults: parsed from a scenario's `faults:` list or posted to the control endpoint; pure decisions about them.

- `linkFailure` (`vmi` + `afterMigrationStart`, or `node` + `at`): the migration link breaks.  In pre-copy the
  migration fails and the VM stays on its source; after the post-copy switch the VM is lost (VMI Failed, counted).
- `nodeFailure` (`node`, `at`): the node goes NotReady, its VMIs go Failed, migrations from or to it fail (a
  post-copy one loses its VM).
- `slowLink` (`node`, `at`, `factor` or `bandwidth`, optional `duration`): migrations from or to the node get that
  share of the link (or at most that rate); `factor: 0` stalls them (KubeVirt's progress timeout then aborts).
- `targetRefuses` (`node`, `at`, optional `duration`): the node's target virt-handler never gets ready, so
  migrations to it fail in PreparingTarget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livemig.core.errors import SpecError, SpecErrors
from livemig.core.units import parse_bitrate, parse_duration


class FaultType(StrEnum):
    LINK_FAILURE = "linkFailure"
    NODE_FAILURE = "nodeFailure"
    SLOW_LINK = "slowLink"
    TARGET_REFUSES = "targetRefuses"
    NODE_DRAIN = "nodeDrain"  # taint the node <nodeDrainTaintKey>:NoSchedule: KubeVirt's evacuation starts


@dataclass(frozen=True, slots=True)
class Fault:
    type: FaultType
    at_s: float = 0.0  # simulated seconds since the start
    node: str | None = None
    vmi: str | None = None  # namespace/name
    after_migration_start_s: float | None = None
    factor: float | None = None  # slowLink: share of the link left (0 ≤ factor ≤ 1; 0 = stalled)
    bandwidth_bps: float | None = None  # slowLink: a cap in bytes/s
    duration_s: float | None = None  # slowLink / targetRefuses: None = until the end

    def active(self, now: float) -> bool:
        """For the state-like faults (slowLink, targetRefuses): in force at `now`."""
        if now < self.at_s:
            return False
        return self.duration_s is None or now < self.at_s + self.duration_s


_KEYS = {"type", "at", "node", "vmi", "afterMigrationStart", "factor", "bandwidth", "duration"}


def parse_fault(doc: object, path: str, *, now_s: float = 0.0) -> Fault:
    """One fault.  `at` defaults to `now_s` (the moment it is posted to the control endpoint)."""
    if not isinstance(doc, Mapping):
        raise SpecErrors([SpecError(path, "must be a mapping with a `type`")])
    errors: list[SpecError] = []
    for key in doc:
        if key not in _KEYS:
            errors.append(SpecError(f"{path}.{key}", f"unknown field (expected one of: {', '.join(sorted(_KEYS))})"))
    raw_type = doc.get("type")
    try:
        fault_type = FaultType(str(raw_type))
    except ValueError:
        choices = ", ".join(t.value for t in FaultType)
        raise SpecErrors([*errors, SpecError(f"{path}.type", f"must be one of {choices}, not {raw_type!r}")]) from None

    def duration(key: str) -> float | None:
        if doc.get(key) is None:
            return None
        try:
            return parse_duration(doc[key], f"{path}.{key}")
        except SpecError as exc:
            errors.append(exc)
            return None

    def string(key: str) -> str | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            errors.append(SpecError(f"{path}.{key}", f"must be a non-empty string, not {value!r}"))
            return None
        return value

    at = duration("at")
    node = string("node")
    vmi = string("vmi")
    after = duration("afterMigrationStart")
    length = duration("duration")
    factor: float | None = None
    bandwidth: float | None = None
    if vmi is not None and "/" not in vmi:
        errors.append(SpecError(f"{path}.vmi", f"must be namespace/name, not {vmi!r}"))
    if fault_type is FaultType.LINK_FAILURE:
        if (vmi is None) == (node is None):
            errors.append(SpecError(path, "linkFailure needs exactly one of `vmi` or `node`"))
        if after is not None and vmi is None:
            errors.append(SpecError(f"{path}.afterMigrationStart", "only applies with `vmi`"))
    else:
        if node is None:
            errors.append(SpecError(f"{path}.node", f"is required for {fault_type}"))
        if vmi is not None or after is not None:
            errors.append(SpecError(path, f"{fault_type} takes a `node`, not a `vmi`"))
    if fault_type is FaultType.SLOW_LINK:
        if doc.get("factor") is not None:
            value = doc["factor"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                errors.append(SpecError(f"{path}.factor", f"must be a number in [0, 1], not {value!r}"))
            else:
                factor = float(value)
        if doc.get("bandwidth") is not None:
            try:
                bandwidth = parse_bitrate(doc["bandwidth"], f"{path}.bandwidth")
            except SpecError as exc:
                errors.append(exc)
        if doc.get("factor") is None and doc.get("bandwidth") is None:
            errors.append(SpecError(path, "slowLink needs `factor` or `bandwidth`"))
    elif doc.get("factor") is not None or doc.get("bandwidth") is not None:
        errors.append(SpecError(path, "`factor` and `bandwidth` only apply to slowLink"))
    if length is not None and fault_type not in (FaultType.SLOW_LINK, FaultType.TARGET_REFUSES):
        errors.append(SpecError(f"{path}.duration", "only applies to slowLink and targetRefuses"))
    if errors:
        raise SpecErrors(errors)
    return Fault(
        type=fault_type,
        at_s=now_s if at is None else at,
        node=node,
        vmi=vmi,
        after_migration_start_s=after if vmi is not None else None,
        factor=factor,
        bandwidth_bps=bandwidth,
        duration_s=length,
    )


def parse_faults(doc: object, path: str = "faults") -> tuple[Fault, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, Sequence) or isinstance(doc, str):
        raise SpecErrors([SpecError(path, "must be a list of faults")])
    faults: list[Fault] = []
    errors: list[SpecError] = []
    for i, item in enumerate(doc):
        try:
            faults.append(parse_fault(item, f"{path}[{i}]"))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise SpecErrors(errors)
    return tuple(faults)


# --- decisions ----------------------------------------------------------------------------------------------------


def link_bandwidth_bps(faults: Iterable[Fault], base_bps: float, source: str, target: str, now: float) -> float:
    """The link rate a migration between `source` and `target` gets at `now`, slowLink faults applied."""
    rate = base_bps
    for f in faults:
        if f.type is FaultType.SLOW_LINK and f.node in (source, target) and f.active(now):
            if f.factor is not None:
                rate *= f.factor
            if f.bandwidth_bps is not None:
                rate = min(rate, f.bandwidth_bps)
    return rate


def target_refuses(faults: Iterable[Fault], node: str, now: float) -> bool:
    return any(f.type is FaultType.TARGET_REFUSES and f.node == node and f.active(now) for f in faults)


def link_failure_due(fault: Fault, vmi_key: str, running_since: float | None, now: float) -> bool:
    """A VMI-bound linkFailure fires once its VMI's migration has been Running for `afterMigrationStart`."""
    if fault.type is not FaultType.LINK_FAILURE or fault.vmi != vmi_key or running_since is None:
        return False
    return now >= max(fault.at_s, running_since + (fault.after_migration_start_s or 0.0))


def timed_faults_due(faults: Sequence[Fault], fired: set[int], now: float) -> list[int]:
    """Indices of node-bound one-shot faults (linkFailure on a node, nodeFailure, nodeDrain) due at `now`, not yet
    fired."""
    due = []
    for i, f in enumerate(faults):
        if i in fired or f.vmi is not None:
            continue
        if f.type in (FaultType.LINK_FAILURE, FaultType.NODE_FAILURE, FaultType.NODE_DRAIN) and now >= f.at_s:
            due.append(i)
    return due


def fault_to_manifest(fault: Fault) -> dict[str, Any]:
    """The JSON the control endpoint reports for a fault."""
    out: dict[str, Any] = {"type": fault.type.value, "at": f"{fault.at_s}s"}
    for key, value in (
        ("node", fault.node),
        ("vmi", fault.vmi),
        ("afterMigrationStart", None if fault.after_migration_start_s is None else f"{fault.after_migration_start_s}s"),
        ("factor", fault.factor),
        ("bandwidth", fault.bandwidth_bps),
        ("duration", None if fault.duration_s is None else f"{fault.duration_s}s"),
    ):
        if value is not None:
            out[key] = value
    return out
