"""Pure checks of KubeVirt objects against kubevirt_expectations: each returns the problems found (empty = fine).

Returning problems instead of asserting lets a test report every mismatch at once, and lets tests/e2e/test_offline.py
prove each check fails on a wrong object, without a cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import kubevirt_expectations as kv


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def phase_history_problems(vmim: Mapping[str, Any]) -> list[str]:
    """phaseTransitionTimestamps of a succeeded VMIM: every phase once, in KubeVirt's order, time not going back."""
    entries = _mapping(vmim.get("status")).get("phaseTransitionTimestamps") or []
    phases = [str(_mapping(e).get("phase")) for e in entries]
    problems: list[str] = []
    repeated = sorted({p for p in phases if phases.count(p) > 1})
    if repeated:
        problems.append(f"phases recorded more than once: {repeated} (in {phases})")
    if tuple(phases) != kv.PHASES_TO_SUCCESS:
        problems.append(f"phase history {phases} != {list(kv.PHASES_TO_SUCCESS)}")
    parsed = [_timestamp(_mapping(e).get("phaseTransitionTimestamp")) for e in entries]
    times = [t for t in parsed if t is not None]
    if len(times) != len(parsed):
        problems.append(f"unparsable phaseTransitionTimestamp in {entries}")
    elif any(b < a for a, b in itertools.pairwise(times)):
        problems.append(f"phaseTransitionTimestamps go back in time: {entries}")
    return problems


def observed_phase_problems(observed: Sequence[str]) -> list[str]:
    """Phases a watch saw: an in-order subsequence of KubeVirt's (a watch may miss some), ending in Succeeded."""
    seen = [p for i, p in enumerate(observed) if p and (i == 0 or p != observed[i - 1])]
    unknown = [p for p in seen if p not in kv.PHASES_TO_SUCCESS]
    if unknown:
        return [f"unexpected phases {unknown} observed: {seen}"]
    ranks = [kv.PHASES_TO_SUCCESS.index(p) for p in seen]
    problems: list[str] = []
    if any(b <= a for a, b in itertools.pairwise(ranks)):
        problems.append(f"phases observed out of order or repeated: {seen}")
    if not seen or seen[-1] != kv.PHASES_TO_SUCCESS[-1]:
        problems.append(f"last observed phase is not {kv.PHASES_TO_SUCCESS[-1]}: {seen}")
    return problems


def migrated_vmi_problems(vmi: Mapping[str, Any], *, vmim_uid: str, source_node: str) -> list[str]:
    """A VMI after a successful pre-copy migration `vmim_uid` away from `source_node` (kubevirt.md §2.1)."""
    status = _mapping(vmi.get("status"))
    state = _mapping(status.get("migrationState"))
    problems: list[str] = []
    if state.get("migrationUid") != vmim_uid:
        problems.append(f"migrationState.migrationUid {state.get('migrationUid')!r} != VMIM uid {vmim_uid!r}")
    if state.get("sourceNode") != source_node:
        problems.append(f"migrationState.sourceNode {state.get('sourceNode')!r} != {source_node!r}")
    target = state.get("targetNode")
    if not target or target == source_node:
        problems.append(f"migrationState.targetNode {target!r} is empty or the source node")
    if status.get("nodeName") != target:
        problems.append(f"status.nodeName {status.get('nodeName')!r} != migrationState.targetNode {target!r}")
    node_label = _mapping(_mapping(vmi.get("metadata")).get("labels")).get(kv.NODE_NAME_LABEL)
    if node_label != target:
        problems.append(f"label {kv.NODE_NAME_LABEL}={node_label!r} != targetNode {target!r}")
    if state.get("completed") is not True:
        problems.append(f"migrationState.completed is {state.get('completed')!r}, not true")
    if state.get("failed"):
        problems.append(f"migrationState.failed is set: {state.get('failureReason')!r}")
    if state.get("mode") != kv.MODE_PRE_COPY:
        problems.append(f"migrationState.mode {state.get('mode')!r} != {kv.MODE_PRE_COPY!r}")
    start, end = _timestamp(state.get("startTimestamp")), _timestamp(state.get("endTimestamp"))
    if start is None or end is None:
        problems.append(f"startTimestamp {state.get('startTimestamp')!r} / endTimestamp {state.get('endTimestamp')!r}")
    elif end < start:
        problems.append(f"endTimestamp {end} before startTimestamp {start}")
    return problems


def final_vmim_problems(vmim: Mapping[str, Any], vmi: Mapping[str, Any]) -> list[str]:
    """A final VMIM once virt-controller has finished with it: the VMI's migrationState copied in, finalizer gone."""
    meta = _mapping(vmim.get("metadata"))
    problems = _vmi_name_label_problems(vmim)
    if kv.MIGRATION_FINALIZER in (meta.get("finalizers") or []):
        problems.append(f"finalizer {kv.MIGRATION_FINALIZER} still present on a final VMIM")
    vmim_state = _mapping(_mapping(vmim.get("status")).get("migrationState"))
    vmi_state = _mapping(_mapping(vmi.get("status")).get("migrationState"))
    for field in ("migrationUid", "sourceNode", "targetNode", "completed"):
        if vmim_state.get(field) != vmi_state.get(field):
            problems.append(f"VMIM migrationState.{field} {vmim_state.get(field)!r} != VMI's {vmi_state.get(field)!r}")
    if vmim_state.get("migrationUid") != meta.get("uid"):
        problems.append(
            f"VMIM migrationState.migrationUid {vmim_state.get('migrationUid')!r} != uid {meta.get('uid')!r}"
        )
    return problems


def admitted_vmim_problems(vmim: Mapping[str, Any]) -> list[str]:
    """An unfinished VMIM carries what virt-api's mutating webhook adds: the VMI-name label and the finalizer."""
    finalizers = _mapping(vmim.get("metadata")).get("finalizers") or []
    problems = _vmi_name_label_problems(vmim)
    if kv.MIGRATION_FINALIZER not in finalizers:
        problems.append(f"finalizer {kv.MIGRATION_FINALIZER} missing: {finalizers}")
    return problems


def _vmi_name_label_problems(vmim: Mapping[str, Any]) -> list[str]:
    label = _mapping(_mapping(vmim.get("metadata")).get("labels")).get(kv.VMI_NAME_LABEL)
    vmi_name = _mapping(vmim.get("spec")).get("vmiName")
    return [] if label == vmi_name else [f"label {kv.VMI_NAME_LABEL}={label!r} != spec.vmiName {vmi_name!r}"]


def policy_record_problems(vmi: Mapping[str, Any], *, policy_name: str, policy_spec: Mapping[str, Any]) -> list[str]:
    """migrationPolicyName after a migration whose VMI matched `policy_name` only, under v1.8's recording rule."""
    state = _mapping(_mapping(vmi.get("status")).get("migrationState"))
    recorded = state.get("migrationPolicyName")
    config = _mapping(state.get("migrationConfiguration"))
    if kv.v18_records_policy(policy_spec):
        problems = [] if recorded == policy_name else [f"migrationPolicyName {recorded!r} != {policy_name!r}"]
        for field in kv.V18_POLICY_CONFIG_FIELDS:
            if field in policy_spec and config.get(field) != policy_spec[field]:
                problems.append(
                    f"migrationConfiguration.{field} {config.get(field)!r} != policy's {policy_spec[field]!r}"
                )
        return problems
    # v1.5-v1.8 always record a migrationConfiguration (the cluster's when no policy applied, kubevirt.md §4.3): only
    # the name tells whether the policy was recorded.
    if recorded is not None:
        return [f"policy {policy_name} sets no field, yet migrationPolicyName={recorded!r}"]
    return []
