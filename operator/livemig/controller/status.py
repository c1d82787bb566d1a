"""The policy's status as livemig writes it: conditions, evaluation, plan, outcomes, nodes (docs/policy.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from livemig.core.actuation import MigrationResult
from livemig.core.planning import Plan

MAX_PLAN_MOVES = 256
MAX_OUTCOMES = 20
MAX_NODES = 512
COUNTERS = (
    "evaluations",
    "migrationsStarted",
    "migrationsSucceeded",
    "migrationsFailed",
    "migrationsAborted",
    "bytesTransferred",
)


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float | None) -> str | None:
    """`250ms`, `12.3s`, `4m5s` (Go-like; fits the CRD's 32 characters)."""
    if seconds is None:
        return None
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now_s: float,
) -> list[dict[str, Any]]:
    """metav1.Condition semantics: lastTransitionTime changes only when the status does."""
    value = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != kind:
            out.append(dict(condition))
            continue
        found = True
        changed = condition.get("status") != value
        out.append(
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message[:32768],
                "observedGeneration": generation or 0,
                "lastTransitionTime": iso(now_s) if changed else condition.get("lastTransitionTime", iso(now_s)),
            }
        )
    if not found:
        out.append(
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message[:32768],
                "observedGeneration": generation or 0,
                "lastTransitionTime": iso(now_s),
            }
        )
    return out


def remembered_hot_nodes(status: Mapping[str, Any]) -> frozenset[str]:
    """Load balancing's hysteresis memory as a policy's status keeps it: the `status.nodes` in state `Hot`."""
    return frozenset(
        str(entry["name"])
        for entry in status.get("nodes") or ()
        if isinstance(entry, Mapping) and entry.get("state") == "Hot" and isinstance(entry.get("name"), str)
    )


def plan_status(plan: Plan, created_s: float, state: str, move_states: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """`status.currentPlan`; `move_states` maps ns/name to (state, VMIM name)."""
    moves = []
    for move in plan.moves[:MAX_PLAN_MOVES]:
        move_state, vmim = move_states.get(move.vmi, ("Pending", ""))
        item: dict[str, Any] = {
            "vmi": {"namespace": move.namespace, "name": move.name},
            "sourceNode": move.source,
            "targetNode": move.target,
            "technique": str(move.technique),
            "reason": f"{move.reason}; {move.technique_reason}"[:1024],
            "predictedDowntime": duration(move.predicted_downtime_s),
            "predictedDuration": duration(move.predicted_time_s),
            "wave": move.wave,
            "state": move_state,
        }
        if vmim:
            item["migration"] = vmim
        moves.append(item)
    return {"id": plan.id, "createdAt": iso(created_s), "state": state, "moves": moves}


def outcome_status(result: MigrationResult) -> dict[str, Any]:
    item: dict[str, Any] = {
        "vmi": {"namespace": result.namespace, "name": result.vmi},
        "migration": result.vmim,
        "sourceNode": result.source,
        "targetNode": result.target,
        "outcome": str(result.outcome),
        "reason": _outcome_reason(result)[:1024],
    }
    if result.technique:
        item["technique"] = result.technique
    if result.abort_reason is not None:
        item["abortReason"] = str(result.abort_reason)
    if result.start_s is not None:
        item["startTime"] = iso(result.start_s)
    if result.end_s is not None:
        item["endTime"] = iso(result.end_s)
    for key, value in (
        ("duration", duration(result.duration_s)),
        ("predictedDuration", duration(result.predicted_time_s)),
        ("predictedDowntime", duration(result.predicted_downtime_s)),
    ):
        if value is not None:
            item[key] = value
    if result.applied_policy:
        item["appliedKubevirtPolicy"] = result.applied_policy
    return item


def _outcome_reason(result: MigrationResult) -> str:
    parts = []
    if result.reason:
        parts.append(result.reason)
    if result.policy_mismatch:
        parts.append(
            f"KubeVirt applied MigrationPolicy {result.applied_policy or '(none)'}, not livemig's "
            f"{result.expected_policy}: the technique may differ from the one chosen"
        )
    if result.succeeded and result.target != result.planned_target and result.planned_target:
        parts.append(f"landed on {result.target}, planned {result.planned_target}")
    return "; ".join(parts) or "completed as planned"


def counters_after(counters: Mapping[str, Any], result: MigrationResult, guest_bytes: float) -> dict[str, int]:
    out = {k: int(counters.get(k, 0) or 0) for k in COUNTERS}
    if result.succeeded:
        out["migrationsSucceeded"] += 1
        out["bytesTransferred"] += int(guest_bytes)
    elif str(result.outcome) == "aborted":
        out["migrationsAborted"] += 1
    else:
        out["migrationsFailed"] += 1
    # A process killed between creating a VMIM and counting it leaves `migrationsStarted` short: every finished
    # migration was started.
    finished = out["migrationsSucceeded"] + out["migrationsFailed"] + out["migrationsAborted"]
    out["migrationsStarted"] = max(out["migrationsStarted"], finished)
    return out
