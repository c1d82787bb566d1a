"""KubeVirt v1.8's migration rules as pure functions: phases, concurrency caps, admission, garbage collection.

Nothing here talks to the API server or reads a clock; the engine passes in views of its state and `now`.
Sources: kubevirt/kubevirt pkg/virt-controller/watch/migration/migration.go, pkg/util/migrations/migrations.go,
pkg/virt-api/webhooks/validating-webhook/admitters/migration-{create,update}-admitter.go.
"""

from __future__ import annotations

import random
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
# With the MigrationPriorityQueue gate off every capped VMIM is re-queued after 5 s, whatever its priority.
UNPRIORITIZED_REQUEUE_S = 5.0
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


def pending_in_queue_order(
    migrations: Iterable[MigrationView], *, prioritized: bool = True, shuffle_seed: str | None = None
) -> list[MigrationView]:
    """Pending VMIMs without a target pod, in the order KubeVirt's queue hands them out.

    With the MigrationPriorityQueue gate on (`prioritized`): by priority; KubeVirt promises no FIFO order within a
    priority, the simulator uses creation time then name so that a run is deterministic.  With the gate off (KubeVirt
    up to v1.8 by default) a plain work queue: each capped VMIM comes back after its own 5 s delay, in no order
    anyone controls — `shuffle_seed` gives that arbitrary order, seeded so that a run is reproducible."""
    pending = [m for m in migrations if m.phase in (Phase.UNSET, Phase.PENDING) and not m.has_target_pod]
    if prioritized:
        return sorted(pending, key=lambda m: (PRIORITY_RANK.get(m.priority, 2), m.created_at, m.key))
    ordered = sorted(pending, key=lambda m: m.key)
    random.Random(shuffle_seed).shuffle(ordered)
    return ordered


def requeue_delay_s(priority: str, *, prioritized: bool) -> float:
    """How long a capped Pending VMIM waits before KubeVirt looks at it again (handleTargetPodCreation)."""
    return REQUEUE_DELAY_S.get(priority, 5.0) if prioritized else UNPRIORITIZED_REQUEUE_S


def admit_pending(
    migrations: Sequence[MigrationView],
    cluster_cap: int,
    node_cap: int,
    *,
    prioritized: bool = True,
    shuffle_seed: str | None = None,
) -> list[MigrationView]:
    """Which Pending VMIMs get a target pod now, in queue order, never exceeding either cap."""
    admitted: list[MigrationView] = []
    view = list(migrations)
    for candidate in pending_in_queue_order(view, prioritized=prioritized, shuffle_seed=shuffle_seed):
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


UNSCHEDULABLE_TIMEOUT_ANNOTATION = "kubevirt.io/migrationUnschedulablePodTimeoutSeconds"
PENDING_TIMEOUT_ANNOTATION = "kubevirt.io/migrationPendingPodTimeoutSeconds"


def target_pod_timed_out(
    pending_since: float,
    unschedulable: bool,
    now: float,
    *,
    unschedulable_timeout_s: float = UNSCHEDULABLE_POD_TIMEOUT_S,
    pending_timeout_s: float = PENDING_POD_TIMEOUT_S,
) -> bool:
    """handlePendingPodTimeout: an unschedulable target pod for 300 s, or any pending one for 900 s (KubeVirt's
    test-only VMIM annotations override either)."""
    waited = now - pending_since
    return waited >= (unschedulable_timeout_s if unschedulable else pending_timeout_s) or waited >= pending_timeout_s


def pod_timeout_override(annotations: Mapping[str, Any], key: str, default: float) -> float:
    """A VMIM annotation's timeout in whole seconds (KubeVirt ignores one that does not parse, or is < 1)."""
    try:
        value = int(str(annotations.get(key, "")))
    except ValueError:
        return default
    return float(value) if value > 0 else default


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

#: virt-controller's service account: the only user KubeVirt lets set `spec.priority` (the simulator, which plays
#: virt-controller, passes its own user name too).
VIRT_CONTROLLER_USER = "system:serviceaccount:kubevirt:kubevirt-controller"
#: KubeVirt answers a bad field with 422 Invalid and the field named in the causes (`ToAdmissionResponse`), and a
#: refusal about the cluster's state with 400 and the error text (`ToAdmissionResponseError`).
INVALID = 422
BAD_REQUEST = 400


@dataclass(frozen=True, slots=True)
class Denial:
    message: str
    field: str | None = None
    code: int = BAD_REQUEST
    cause_type: str = "FieldValueInvalid"
    more_fields: tuple[str, ...] = ()  # further causes with the same message (KubeVirt lists each)

    @property
    def fields(self) -> tuple[str, ...]:
        return ((self.field,) if self.field else ()) + self.more_fields


def admit_migration_create(
    vmim: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
    same_vmi_migrations: Sequence[Mapping[str, Any]],
    username: str,
    *,
    priority_queue: bool = False,
    controller_users: frozenset[str] = frozenset({VIRT_CONTROLLER_USER}),
) -> Denial | None:
    """KubeVirt's MigrationCreateAdmitter (migration-create-admitter.go @v1.8.0), in its order, with its texts and
    codes.  `same_vmi_migrations`: VMIMs labelled with the VMI's name.  `spec.priority` (v1.7+) is refused unless the
    MigrationPriorityQueue gate is on and the request comes from virt-controller."""
    spec = vmim.get("spec") or {}
    namespace = (vmim.get("metadata") or {}).get("namespace", "")
    vmi_name = spec.get("vmiName") or ""
    if not vmi_name:
        return Denial("vmiName is missing", field="spec.vmiName", code=INVALID, cause_type="FieldValueRequired")
    if spec.get("priority") is not None:
        if not priority_queue:
            return Denial(
                "MigrationPriorityQueue feature gate is not enabled in kubevirt resource",
                field="spec.migrationPriority",
                code=INVALID,
                cause_type="FieldValueForbidden",
            )
        if username not in controller_users:
            return Denial(
                "Migration priority queue, only virt-controller is allowed to set priority field",
                field="spec.migrationPriority",
                code=INVALID,
                cause_type="FieldValueForbidden",
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
    """KubeVirt's MigrationUpdateAdmitter: spec immutable; selector label fixed while in flight (422, no field)."""
    if (new.get("spec") or {}) != (old.get("spec") or {}):
        return _not_supported("update of Migration object's spec is restricted")
    new_phase = (new.get("status") or {}).get("phase")
    old_labels = (old.get("metadata") or {}).get("labels")
    if new_phase not in ("Succeeded", "Failed") and old_labels is not None and VMI_NAME_LABEL in old_labels:
        new_labels = (new.get("metadata") or {}).get("labels")
        if new_labels is None:
            return _not_supported("selector label can't be removed from an in-flight migration")
        if new_labels.get(VMI_NAME_LABEL) != old_labels[VMI_NAME_LABEL]:
            return _not_supported("selector label can't be modified on an in-flight migration")
    return None


def _not_supported(message: str) -> Denial:
    return Denial(message, code=INVALID, cause_type="FieldValueNotSupported")


def admit_migration_policy(policy: Mapping[str, Any]) -> Denial | None:
    """KubeVirt's MigrationPolicyAdmitter (migrationpolicy-admitter.go): negative `completionTimeoutPerGiB` or
    `bandwidthPerMigration` refused, every cause listed (422, messages joined by ", ")."""
    spec = policy.get("spec") or {}
    causes: list[str] = []
    timeout = spec.get("completionTimeoutPerGiB")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout < 0:
        causes.append("spec.completionTimeoutPerGiB")
    bandwidth = spec.get("bandwidthPerMigration")
    if bandwidth is not None and _quantity_sign(bandwidth) < 0:
        causes.append("spec.bandwidthPerMigration")
    if not causes:
        return None
    # KubeVirt's global message joins the causes' messages (all "must not be negative"); the fields are in the causes.
    return Denial(
        ", ".join("must not be negative" for _ in causes), field=causes[0], code=INVALID, more_fields=tuple(causes[1:])
    )


def _quantity_sign(value: object) -> int:
    """The sign of a Kubernetes quantity (`-1Mi`, `-5`, 10): what `AsInt64`/`AsDec().Sign()` give."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return (value > 0) - (value < 0)
    text = str(value).strip()
    return -1 if text.startswith("-") and text.lstrip("-").strip("0.") not in ("",) else 0


def mutate_migration_create(
    vmim: Mapping[str, Any], *, added_node_selector_supported: bool = True, priority_supported: bool = True
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
    if not priority_supported and "priority" in spec:  # v1.7+ field, pruned by older CRDs alike
        ops.append({"op": "remove", "path": "/spec/priority"})
    labels = dict(metadata.get("labels") or {})
    labels[VMI_NAME_LABEL] = vmi_name
    ops.append({"op": "add", "path": "/metadata/labels", "value": labels})
    finalizers = list(metadata.get("finalizers") or [])
    if MIGRATION_FINALIZER not in finalizers:
        finalizers.append(MIGRATION_FINALIZER)
    ops.append({"op": "add", "path": "/metadata/finalizers", "value": finalizers})
    return ops
