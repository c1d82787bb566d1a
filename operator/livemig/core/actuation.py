"""How a planned move becomes KubeVirt objects, and how a finished migration is read back.  Pure.

A move is carried out as (docs/operator.md, "Technique actuation"):
1. the VMI gets the label `livemig.io/move=<vmim name>`;
2. a KubeVirt MigrationPolicy `livemig-<vmim name>` selects every label of the VMI (plus that one) and every label
   of its namespace, and sets the technique's switches.  KubeVirt applies the matching policy with the most matching
   labels (`core.kubevirt.match_kv_migration_policy`): no policy that lacks livemig's label can match as many;
3. a VirtualMachineInstanceMigration with `addedNodeSelector` for the planned target (KubeVirt ≥ v1.6).
Names are deterministic (policy, VMI, source, target and the VMI's livemig history), so a restart that plans the
same move again finds the objects it made instead of making a second migration.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livemig.core.inventory import meta, parse_time
from livemig.core.kubevirt import MIGRATION_POLICY_GROUP, MIGRATION_POLICY_VERSION
from livemig.core.vocabulary import AbortReason, Outcome, Technique

MANAGED_BY = {"app.kubernetes.io/managed-by": "livemig"}
POLICY_LABEL = "livemig.io/policy"
MOVE_LABEL = "livemig.io/move"
TECHNIQUE_LABEL = "livemig.io/technique"
HOSTNAME_LABEL = "kubernetes.io/hostname"
#: Labels KubeVirt itself changes while a migration runs; a technique policy must not depend on them.
VOLATILE_VMI_LABELS = frozenset({"kubevirt.io/migrationTargetNodeName", MOVE_LABEL})
#: Seconds per decimal GB before KubeVirt's completion timeout switches a post-copy migration (1 → ceil(GB) s).
POST_COPY_TIMEOUT_PER_GIB = 1
ANNOTATION_PREFIX = "livemig.io/"


@dataclass(frozen=True, slots=True)
class MoveRequest:
    """A move as the executor carries it out (what the KubeVirt objects are made from)."""

    policy: str
    namespace: str
    vmi: str
    source: str
    target: str
    technique: Technique
    reason: str
    technique_reason: str
    predicted_time_s: float
    predicted_downtime_s: float
    plan_id: str
    bandwidth_per_migration_bps: float | None = None  # the livemig policy's spec.technique.bandwidthPerMigration
    completion_timeout_per_gib: int | None = None  # the livemig policy's spec.technique.completionTimeoutPerGiB
    history_tag: str = ""  # the VMI's newest livemig migration, so a retry after a failure gets a new name
    predicted_risk_window_s: float = 0.0  # post-copy: the model's window in which a link failure loses the VM
    wave: int = 0  # the plan's wave (Move.wave)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.vmi}"


def _dns_label(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    return cleaned or "x"


def vmim_name(request: MoveRequest) -> str:
    """`lm-<vmi>-<hash>`, ≤ 63 characters (it is also a label value on the VMI)."""
    body = "\x00".join(
        (request.policy, request.namespace, request.vmi, request.source, request.target, request.history_tag)
    )
    digest = hashlib.sha256(body.encode()).hexdigest()[:10]
    return f"lm-{_dns_label(request.vmi)[:48].strip('-')}-{digest}"


def stale_reason(vmi: Mapping[str, Any] | None, request: MoveRequest) -> str | None:
    """Why `request` no longer fits the VMI as read now, or None if it still does.

    A plan is made from watch-fed indexes, which lag the API server (and lag it most across an API server restart,
    when each watch resumes on its own): a move planned from a VMI that has meanwhile moved would run a second
    migration from wherever it now is.  The executor checks this against a fresh read before it makes anything."""
    if vmi is None:
        return "the VMI is gone"
    node = (vmi.get("status") or {}).get("nodeName")
    if node != request.source:
        return f"the VMI is on {node or 'no node'} now, not on {request.source}"
    return None


def kv_policy_name(vmim: str) -> str:
    return f"livemig-{vmim}"


def technique_settings(request: MoveRequest) -> dict[str, Any]:
    """The KubeVirt MigrationPolicy switches for the technique (each explicit, so the cluster's do not leak in)."""
    settings: dict[str, Any] = {"allowPostCopy": False, "allowAutoConverge": False, "allowWorkloadDisruption": False}
    if request.technique is Technique.POST_COPY:
        settings.update(
            allowPostCopy=True, allowWorkloadDisruption=True, completionTimeoutPerGiB=POST_COPY_TIMEOUT_PER_GIB
        )
    elif request.technique is Technique.AUTO_CONVERGE:
        settings["allowAutoConverge"] = True
    if request.technique is not Technique.POST_COPY and request.completion_timeout_per_gib is not None:
        settings["completionTimeoutPerGiB"] = request.completion_timeout_per_gib
    if request.bandwidth_per_migration_bps is not None:
        settings["bandwidthPerMigration"] = str(int(request.bandwidth_per_migration_bps))
    return settings


def kv_migration_policy(
    request: MoveRequest, vmim: str, vmi_labels: Mapping[str, str], namespace_labels: Mapping[str, str]
) -> dict[str, Any]:
    selector = {k: v for k, v in vmi_labels.items() if k not in VOLATILE_VMI_LABELS}
    selector[MOVE_LABEL] = vmim
    return {
        "apiVersion": f"{MIGRATION_POLICY_GROUP}/{MIGRATION_POLICY_VERSION}",
        "kind": "MigrationPolicy",
        "metadata": {
            "name": kv_policy_name(vmim),
            "labels": {**MANAGED_BY, POLICY_LABEL: _label_value(request.policy), MOVE_LABEL: vmim},
        },
        "spec": {
            "selectors": {"virtualMachineInstanceSelector": selector, "namespaceSelector": dict(namespace_labels)},
            **technique_settings(request),
        },
    }


def vmim_manifest(request: MoveRequest, vmim: str, *, pin_target: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"vmiName": request.vmi}
    if pin_target:
        spec["addedNodeSelector"] = {HOSTNAME_LABEL: request.target}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {
            "name": vmim,
            "namespace": request.namespace,
            "labels": {
                **MANAGED_BY,
                POLICY_LABEL: _label_value(request.policy),
                TECHNIQUE_LABEL: str(request.technique),
            },
            "annotations": {
                "livemig.io/plan": request.plan_id,
                "livemig.io/wave": str(request.wave),
                "livemig.io/source": request.source,
                "livemig.io/target": request.target,
                "livemig.io/technique": str(request.technique),
                "livemig.io/predicted-duration": f"{request.predicted_time_s:.3f}",
                "livemig.io/predicted-downtime": f"{request.predicted_downtime_s:.6f}",
                "livemig.io/predicted-risk-window": f"{request.predicted_risk_window_s:.3f}",
                "livemig.io/reason": request.reason[:1024],
                "livemig.io/technique-reason": request.technique_reason[:1024],
                "livemig.io/kv-policy": kv_policy_name(vmim),
            },
        },
        "spec": spec,
    }


def _label_value(text: str) -> str:
    return text[:63].strip("-_.") or "x"


def supports_added_node_selector(version: str | None) -> bool:
    """`addedNodeSelector` exists from KubeVirt v1.6.0 (unknown version: assume a current KubeVirt)."""
    match = re.match(r"^v?(\d+)\.(\d+)", version or "")
    if not match:
        return True
    return (int(match.group(1)), int(match.group(2))) >= (1, 6)


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """A finished livemig migration, read from its VMIM (KubeVirt copies the VMI's migrationState in when final)."""

    policy: str
    namespace: str
    vmi: str
    vmim: str
    source: str
    target: str  # where it landed (migrationState.targetNode), else the planned target
    planned_target: str
    technique: str
    outcome: Outcome
    abort_reason: AbortReason | None
    reason: str  # KubeVirt's failure reason, or a mismatch note
    start_s: float | None
    end_s: float | None
    predicted_time_s: float | None
    predicted_downtime_s: float | None
    applied_policy: str | None  # migrationState.migrationPolicyName
    expected_policy: str
    # Failed after the post-copy switch: the running state was split between the nodes, so the VM is lost (KubeVirt
    # fails the VMI); the model's risk window said how long that exposure would last.
    lost_in_post_copy: bool = False
    predicted_risk_window_s: float | None = None

    @property
    def duration_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return max(0.0, self.end_s - self.start_s)

    @property
    def succeeded(self) -> bool:
        return self.outcome in (Outcome.COMPLETED, Outcome.SWITCHED_TO_POST_COPY, Outcome.PAUSED)

    @property
    def policy_mismatch(self) -> bool:
        return self.succeeded and self.applied_policy != self.expected_policy


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def read_result(vmim: Mapping[str, Any]) -> MigrationResult | None:
    """The result of a final livemig VMIM; None while it is not final (phase Succeeded/Failed)."""
    status = vmim.get("status") or {}
    phase = status.get("phase")
    if phase not in ("Succeeded", "Failed"):
        return None
    m = meta(vmim)
    labels = m.get("labels") or {}
    annotations = m.get("annotations") or {}
    state = status.get("migrationState") or {}
    mode = state.get("mode")
    failure = str(state.get("failureReason") or "")
    abort_reason: AbortReason | None = None
    if phase == "Succeeded":
        outcome = {"PostCopy": Outcome.SWITCHED_TO_POST_COPY, "Paused": Outcome.PAUSED}.get(
            str(mode), Outcome.COMPLETED
        )
    elif state.get("abortStatus") == "Succeeded" or "aborted" in failure:
        outcome = Outcome.ABORTED
        if "not completed after" in failure:
            abort_reason = AbortReason.COMPLETION_TIMEOUT
        elif "stuck for" in failure:
            abort_reason = AbortReason.PROGRESS_TIMEOUT
        else:
            abort_reason = AbortReason.REQUESTED
    else:
        outcome = Outcome.FAILED
    if not failure and phase == "Failed":
        failure = "the migration failed (KubeVirt gave no reason in migrationState)"
    expected = str(annotations.get("livemig.io/kv-policy", ""))
    applied = state.get("migrationPolicyName")
    planned = str(annotations.get("livemig.io/target", ""))
    return MigrationResult(
        policy=str(labels.get(POLICY_LABEL, "")),
        namespace=str(m.get("namespace", "")),
        vmi=str((vmim.get("spec") or {}).get("vmiName", "")),
        vmim=str(m.get("name", "")),
        source=str(state.get("sourceNode") or annotations.get("livemig.io/source", "")),
        target=str(state.get("targetNode") or planned),
        planned_target=planned,
        technique=str(annotations.get("livemig.io/technique", labels.get(TECHNIQUE_LABEL, ""))),
        outcome=outcome,
        abort_reason=abort_reason,
        reason=failure,
        start_s=parse_time(state.get("startTimestamp")),
        end_s=parse_time(state.get("endTimestamp")),
        predicted_time_s=_float(annotations.get("livemig.io/predicted-duration")),
        predicted_downtime_s=_float(annotations.get("livemig.io/predicted-downtime")),
        applied_policy=str(applied) if applied else None,
        expected_policy=expected,
        lost_in_post_copy=phase == "Failed" and mode == "PostCopy",
        predicted_risk_window_s=_float(annotations.get("livemig.io/predicted-risk-window")),
    )


def is_livemig(obj: Mapping[str, Any]) -> bool:
    labels = meta(obj).get("labels") or {}
    return labels.get("app.kubernetes.io/managed-by") == "livemig"
