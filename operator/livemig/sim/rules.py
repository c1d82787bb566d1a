"""KubeVirt v1.8's migration rules as pure functions: phases, concurrency caps, admission, garbage collection.

Nothing here talks to the API server or reads a clock; the engine passes in views of its state and `now`.
Sources: kubevirt/kubevirt pkg/virt-controller/watch/migration/migration.go, pkg/util/migrations/migrations.go,
pkg/virt-api/webhooks/validating-webhook/admitters/migration-{create,update}-admitter.go.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

VMI_NAME_LABEL = "kubevirt.io/vmi-name"
MIGRATION_FINALIZER = "kubevirt.io/migrationJobFinalize"
TARGET_NODE_LABEL = "kubevirt.io/migrationTargetNodeName"
NODE_NAME_LABEL = "kubevirt.io/nodeName"
FINALIZED_KEPT_PER_VMI = 5
UNSCHEDULABLE_POD_TIMEOUT_S = 300.0
PENDING_POD_TIMEOUT_S = 900.0
# Re-queue delays of a capped Pending VMIM, by priority (migration.go).
REQUEUE_DELAY_S = {"system-critical": 1.0, "user-triggered": 3.0, "system-maintenance": 5.0, "": 5.0}
PRIORITY_RANK = {"system-critical": 0, "user-triggered": 1, "system-maintenance": 2, "": 2}


class Phase(StrEnum):
    UNSET = ""
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    SCHEDULED = "Scheduled"
    PREPARING_TARGET = "PreparingTarget"
    TARGET_READY = "TargetReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_final(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)

    @property
    def is_running(self) -> bool:
        """KubeVirt's `IsRunning()`: Scheduling through Running."""
        return self in _RUNNING_PHASES

    @property
    def before_handoff(self) -> bool:
        return self in (Phase.UNSET, Phase.PENDING, Phase.SCHEDULING, Phase.SCHEDULED)


_RUNNING_PHASES = frozenset(
    {Phase.SCHEDULING, Phase.SCHEDULED, Phase.PREPARING_TARGET, Phase.TARGET_READY, Phase.RUNNING}
)
# The order a successful migration walks, one phaseTransitionTimestamps entry each.
PHASE_ORDER = (
    Phase.PENDING,
    Phase.SCHEDULING,
    Phase.SCHEDULED,
    Phase.PREPARING_TARGET,
    Phase.TARGET_READY,
    Phase.RUNNING,
    Phase.SUCCEEDED,
)


def next_phase(phase: Phase) -> Phase:
    """The next phase on the success path (Failed is reachable from any non-final phase)."""
    if phase is Phase.UNSET:
        return Phase.PENDING
    if phase.is_final:
        raise ValueError(f"{phase} is final")
    return PHASE_ORDER[PHASE_ORDER.index(phase) + 1]


def transition_allowed(current: Phase, target: Phase) -> bool:
    if current.is_final:
        return False
    if target is Phase.FAILED:
        return True
    return target is next_phase(current)


def add_phase_timestamp(timestamps: Sequence[Mapping[str, str]], phase: Phase, stamp: str) -> list[dict[str, str]]:
    """KubeVirt's SetVMIMigrationPhaseTransitionTimestamp: append `{phase, time}` unless the phase has an entry."""
    out = [dict(t) for t in timestamps]
    if any(t.get("phase") == phase.value for t in out):
        return out
    out.append({"phase": phase.value, "phaseTransitionTimestamp": stamp})
    return out


# --- concurrency caps ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MigrationView:
    """What the cap rules need to know about one VirtualMachineInstanceMigration."""

    key: str  # namespace/name
    vmi_key: str  # namespace/vmiName
    phase: Phase
    source_node: str
    has_target_pod: bool = False
    priority: str = ""
    created_at: float = 0.0


def counts_as_running(m: MigrationView) -> bool:
    """Running for the caps: IsRunning() plus Pending ones that already have a target pod."""
    return m.phase.is_running or (m.phase is Phase.PENDING and m.has_target_pod)


def running_migrations(migrations: Iterable[MigrationView]) -> list[MigrationView]:
    return [m for m in migrations if not m.phase.is_final and counts_as_running(m)]


def may_create_target_pod(
    candidate: MigrationView, migrations: Sequence[MigrationView], cluster_cap: int, node_cap: int
) -> bool:
    """KubeVirt's handleTargetPodCreation cap check for a Pending VMIM (else it stays Pending, silently)."""
    running = running_migrations(m for m in migrations if m.key != candidate.key)
    if len(running) >= cluster_cap:
        return False
    return sum(1 for m in running if m.source_node == candidate.source_node) < node_cap


def pending_in_queue_order(migrations: Iterable[MigrationView]) -> list[MigrationView]:
    """Pending VMIMs without a target pod, by priority.  KubeVirt promises no FIFO order within a priority; the
    simulator uses creation time then name so that a run is deterministic."""
    pending = [m for m in migrations if m.phase in (Phase.UNSET, Phase.PENDING) and not m.has_target_pod]
    return sorted(pending, key=lambda m: (PRIORITY_RANK.get(m.priority, 2), m.created_at, m.key))


def admit_pending(migrations: Sequence[MigrationView], cluster_cap: int, node_cap: int) -> list[MigrationView]:
    """Which Pending VMIMs get a target pod now, in queue order, never exceeding either cap."""
    admitted: list[MigrationView] = []
    view = list(migrations)
    for candidate in pending_in_queue_order(view):
        if may_create_target_pod(candidate, view, cluster_cap, node_cap):
            admitted.append(candidate)
            view = [
                MigrationView(m.key, m.vmi_key, m.phase, m.source_node, True, m.priority, m.created_at)
                if m.key == candidate.key
                else m
                for m in view
            ]
    return admitted


# --- target pod timeouts ------------------------------------------------------------------------------------------


def target_pod_timed_out(pending_since: float, unschedulable: bool, now: float) -> bool:
    """handlePendingPodTimeout: an unschedulable target pod for 300 s, or any pending one for 900 s."""
    waited = now - pending_since
    return waited >= (UNSCHEDULABLE_POD_TIMEOUT_S if unschedulable else PENDING_POD_TIMEOUT_S)


# --- garbage collection -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinalizedView:
    name: str
    vmi: str
    final_at: float  # when it turned final (sort key; KubeVirt sorts by creation timestamp)
    created_at: float = 0.0


def finalized_to_delete(finalized: Iterable[FinalizedView], keep: int = FINALIZED_KEPT_PER_VMI) -> list[str]:
    """garbageCollectFinalizedMigrations: keep the `keep` newest finalized VMIMs per VMI, delete the rest."""
    by_vmi: dict[str, list[FinalizedView]] = defaultdict(list)
    for f in finalized:
        by_vmi[f.vmi].append(f)
    doomed: list[str] = []
    for items in by_vmi.values():
        items.sort(key=lambda f: (f.created_at, f.final_at, f.name), reverse=True)
        doomed.extend(f.name for f in items[keep:])
    return sorted(doomed)


# --- admission ----------------------------------------------------------------------------------------------------

PRIORITY_USERS_PREFIX = "system:serviceaccount:kubevirt:"


@dataclass(frozen=True, slots=True)
class Denial:
    message: str
    field: str | None = None
    code: int = 400


def admit_migration_create(
    vmim: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
    same_vmi_migrations: Sequence[Mapping[str, Any]],
    username: str,
) -> Denial | None:
    """KubeVirt's MigrationCreateAdmitter, in its order.  `same_vmi_migrations`: VMIMs labelled with the VMI's name.

    `spec.priority` may only be set by KubeVirt's own service accounts (v1.7+); the message is the simulator's own
    wording, not KubeVirt's (not verified against the source).
    """
    spec = vmim.get("spec") or {}
    namespace = (vmim.get("metadata") or {}).get("namespace", "")
    vmi_name = spec.get("vmiName") or ""
    if not vmi_name:
        return Denial("vmiName is missing", field="spec.vmiName")
    if spec.get("priority") is not None and not username.startswith(PRIORITY_USERS_PREFIX):
        return Denial(
            f"spec.priority is reserved for KubeVirt's controllers; user {username} may not set it",
            field="spec.priority",
        )
    if vmi is None:
        return Denial(f'the VMI "{namespace}/{vmi_name}" does not exist')
    phase = (vmi.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return Denial("Cannot migrate VMI in finalized state.")
    for cond in (vmi.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "LiveMigratable" and cond.get("status") == "False":
            return Denial(f"Cannot migrate VMI, Reason: {cond.get('reason', '')}, Message: {cond.get('message', '')}")
    for other in same_vmi_migrations:
        other_phase = (other.get("status") or {}).get("phase")
        if other_phase in ("Succeeded", "Failed"):
            continue
        uid = (other.get("metadata") or {}).get("uid", "")
        other_vmi = (other.get("spec") or {}).get("vmiName", vmi_name)
        return Denial(
            f"in-flight migration detected. Active migration job ({uid}) is currently already in progress "
            f"for VMI {other_vmi}."
        )
    return None


def admit_migration_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> Denial | None:
    """KubeVirt's MigrationUpdateAdmitter: spec immutable; selector label fixed while in flight."""
    if (new.get("spec") or {}) != (old.get("spec") or {}):
        return Denial("update of Migration object's spec is restricted")
    new_phase = (new.get("status") or {}).get("phase")
    old_labels = (old.get("metadata") or {}).get("labels")
    if new_phase not in ("Succeeded", "Failed") and old_labels is not None and VMI_NAME_LABEL in old_labels:
        new_labels = (new.get("metadata") or {}).get("labels")
        if new_labels is None:
            return Denial("selector label can't be removed from an in-flight migration")
        if new_labels.get(VMI_NAME_LABEL) != old_labels[VMI_NAME_LABEL]:
            return Denial("selector label can't be modified on an in-flight migration")
    return None


def mutate_migration_create(
    vmim: Mapping[str, Any], *, added_node_selector_supported: bool = True
) -> list[dict[str, Any]]:
    """KubeVirt's MigrationCreateMutator as a JSON patch: label `kubevirt.io/vmi-name`, finalizer.

    Mimicking v1.5 (`added_node_selector_supported=False`), `spec.addedNodeSelector` is removed: v1.5's CRD has no
    such field, so the API server prunes it from the stored object (kubectl's strict field validation would refuse
    it; the shared test CRD is v1.8's, so the simulator prunes it here).
    """
    metadata = vmim.get("metadata") or {}
    spec = vmim.get("spec") or {}
    vmi_name = spec.get("vmiName", "")
    ops: list[dict[str, Any]] = []
    if not added_node_selector_supported and "addedNodeSelector" in spec:
        ops.append({"op": "remove", "path": "/spec/addedNodeSelector"})
    labels = dict(metadata.get("labels") or {})
    labels[VMI_NAME_LABEL] = vmi_name
    ops.append({"op": "add", "path": "/metadata/labels", "value": labels})
    finalizers = list(metadata.get("finalizers") or [])
    if MIGRATION_FINALIZER not in finalizers:
        finalizers.append(MIGRATION_FINALIZER)
    ops.append({"op": "add", "path": "/metadata/finalizers", "value": finalizers})
    return ops
