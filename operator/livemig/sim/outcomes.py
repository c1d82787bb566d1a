"""How a migration ends: success or failure written to the VMI and the VMIM, the finalizer released, the outcome
recorded; and the failure reasons in KubeVirt's words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livemig.core.vocabulary import AbortReason, Outcome
from livemig.sim import rules
from livemig.sim.base import SimulationBase
from livemig.sim.objects import MigrationState
from livemig.sim.rules import Phase
from livemig.sim.writes import VmimFinalizerRemoval

LINK_FAILURE_REASON = "Live migration failed: the migration connection to the target node was lost"
VM_LOST_REASON = "the VM was lost: its migration link failed during post-copy"
TARGET_DOWN_REASON = "Migration target pod was removed during active migration."
VMI_SHUTDOWN_REASON = "Migration failed vmi shutdown during migration."
TARGET_POD_SHUTDOWN_REASON = "Migration failed because target pod shutdown during migration"
SOURCE_REPORTED_FAILED_REASON = "source node reported migration failed"


class MigrationOutcomes(SimulationBase):
    """Ending a migration, from whichever rule decides it is over."""

    def _succeed(self, m: MigrationState, now: float) -> None:
        vmi = self.vmis[m.vmi_key]
        assert m.target_node is not None
        vmi.node = m.target_node
        vmi.migration_uid = None
        vmi.labels[rules.NODE_NAME_LABEL] = m.target_node
        vmi.labels.pop(rules.TARGET_NODE_LABEL, None)  # the target virt-handler drops it once final
        ms = self._migration_state_manifest(m, now)
        self._vmi_patch(
            vmi,
            {
                "metadata": {"labels": {rules.NODE_NAME_LABEL: m.target_node, rules.TARGET_NODE_LABEL: None}},
                "status": {"nodeName": m.target_node, "evacuationNodeName": None, "migrationState": ms},
            },
        )
        self._set_phase(m, Phase.SUCCEEDED, now)
        self._vmim_event(m, "SuccessfulMigration", "Source node reported migration succeeded")
        self._vmi_event(m, "Migrated", f"The VirtualMachineInstance migrated to node {m.target_node}.")
        self._finalize(m, now, ms)

    def _fail(
        self,
        m: MigrationState,
        now: float,
        reason: str,
        *,
        outcome: Outcome,
        abort_reason: AbortReason | None = None,
        lost_reason: str = "MigrationLinkFailure",
        event: str | None = None,
    ) -> None:
        """Fail `m` with `reason` (the VMI's migrationState.failureReason); `event` is the VMIM's FailedMigration
        text when KubeVirt's controller words it differently from the reason."""
        m.failure_reason = reason
        m.outcome = outcome
        vmi = self.vmis.get(m.vmi_key)
        ms: dict[str, Any] | None = None
        if vmi is not None and vmi.migration_uid == m.uid:
            vmi.migration_uid = None
            vmi.throttle = 0.0
            vmi.paused = False
            if not m.phase.before_handoff:
                m.end_at = now
                ms = self._migration_state_manifest(m, now)
                status: dict[str, Any] = {"migrationState": ms}
                if m.vm_lost:
                    vmi.phase = "Failed"
                    vmi.reason = reason
                    self.vmis_lost += 1
                    status["phase"] = "Failed"
                    status["reason"] = lost_reason
                vmi.labels.pop(rules.TARGET_NODE_LABEL, None)  # removed once the migration is final
                self._vmi_patch(vmi, {"metadata": {"labels": {rules.TARGET_NODE_LABEL: None}}, "status": status})
        self._set_phase(m, Phase.FAILED, now)
        self._vmim_event(m, "FailedMigration", event or reason, warning=True)
        if ms is not None:  # after the hand-off the VMI reports it too
            self._vmi_event(
                m, "Migrated", f"VirtualMachineInstance migration uid {m.uid} failed. reason:{reason}", warning=True
            )
        self._finalize(m, now, ms)

    def _finalize(self, m: MigrationState, now: float, migration_state: Mapping[str, Any] | None) -> None:
        m.final_at = now
        if m.evacuation_node is not None:
            self.evacuation.finished(m.vmi_key, m.phase is Phase.SUCCEEDED, now)
        self._vmim_status(m, migration_state)
        self.migration_totals["succeeded" if m.phase is Phase.SUCCEEDED else "failed"] += 1
        self._release_finalizer(m)
        if self.priority_queue:
            # With the gate on, a finished migration wakes the top-N Pending VMIMs by priority (N = the cluster
            # cap: reEnqueueHighestPriorityPendingMigrations).  With it off nothing wakes them: each waits out its
            # own 5 s re-queue.
            waiting = [o for o in self.open.values() if o.phase is Phase.PENDING and not o.has_target_pod]
            top = rules.pending_in_queue_order(o.view() for o in waiting)[: self.config.parallel_migrations_per_cluster]
            keys = {v.key for v in top}
            for other in waiting:
                if other.key in keys:
                    other.requeue_at = min(other.requeue_at, now)
        if m.source_node:
            self._outcomes.append(self._outcome_record(m))

    def _release_finalizer(self, m: MigrationState) -> None:
        if not m.finalizer_removed:
            m.finalizer_removed = True
            self._writes.append(VmimFinalizerRemoval(m.namespace, m.name))

    def _outcome_record(self, m: MigrationState) -> dict[str, Any]:
        last = m.last
        simulated: dict[str, Any] | None = None
        if last is not None:
            simulated = {
                "total_time_s": last.elapsed_s,
                "downtime_s": last.downtime_s,
                "transferred_bytes": last.transferred_bytes,
                "remaining_bytes": last.remaining_bytes,
                "rounds": last.rounds,
                "max_throttle": max(m.max_throttle, last.throttle),
            }
        return {
            "vmim": m.key,
            "vmi": m.vmi_key,
            "source": m.source_node,
            "target": m.target_node,
            "technique": None if m.technique is None else str(m.technique),
            "kubevirtPolicy": m.matched_policy,
            "config": None if m.config is None else m.config.to_manifest(),
            "mode": m.mode,
            "predicted": m.predicted,
            "simulated": simulated,
            "result": m.phase.value,
            "outcome": None if m.outcome is None else str(m.outcome),
            "reason": m.failure_reason,
            "vmLost": m.vm_lost,
            "createdAt": m.created_at,
            "startedAt": m.running_since,
            "finishedAt": m.final_at,
        }
