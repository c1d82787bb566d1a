"""VMIMs going away: a deleted VMIM cancelled or aborted, a VMIM whose VMI is gone, and the garbage collection of
finalized ones."""

from __future__ import annotations

from livemig.core.vocabulary import AbortReason, Outcome
from livemig.sim import rules
from livemig.sim.objects import MigrationState
from livemig.sim.outcomes import MigrationOutcomes
from livemig.sim.rules import Phase
from livemig.sim.writes import VmimDeletion


class Deletions(MigrationOutcomes):
    """What virt-controller does with VMIMs being deleted or no longer wanted."""

    def _delete_orphan(self, m: MigrationState) -> None:
        self.open.pop(m.key, None)
        m.deleting = True
        self._writes.append(VmimDeletion(m.namespace, m.name))

    def _handle_deletions(self, now: float) -> None:
        for m in list(self.open.values()):
            if not m.deleting or m.phase.is_final:
                continue
            if m.phase.before_handoff:
                # Target pod deleted; the VMIM fails as "canceled".
                self._fail(
                    m,
                    now,
                    "Migration failed due to being canceled",
                    outcome=Outcome.ABORTED,
                    abort_reason=AbortReason.REQUESTED,
                )
            elif m.phase is Phase.RUNNING and m.backend is not None and not m.abort_requested:
                # After the hand-off KubeVirt only marks the VMIM (condition migrationAbortRequested, on_vmim) and
                # lets the migration go on; once it is Running the controller asks virt-handler to cancel
                # (markMigrationAbortInVmiStatus), and it may still complete first.
                vmi = self.vmis[m.vmi_key]
                m.abort_requested = True
                self._vmim_event(m, "SuccessfulAbortMigration", "Migration is ready to be canceled by virt-handler.")
                if m.mode == "PostCopy":
                    # What QEMU does with a cancel in post-copy is unverified; the simulator refuses it.
                    m.abort_status = "Failed"
                    self._vmi_patch(vmi, {"status": {"migrationState": self._migration_state_manifest(m, now)}})
                    continue
                m.abort_status = "Aborting"
                self._vmi_event(m, "Migrating", "VirtualMachineInstance is aborting migration.")
                self._vmi_patch(vmi, {"status": {"migrationState": self._migration_state_manifest(m, now)}})
                if m.backend.abort(AbortReason.REQUESTED):
                    m.last = m.backend.state()
                else:  # refused: stop-and-copy already under way
                    m.abort_status = "Failed"

    def _garbage_collect(self) -> None:
        """Keep the newest five finalized VMIMs per VMI (by creationTimestamp, as KubeVirt sorts them; ties by the
        order the simulator saw them)."""
        if not self._gc_needed:
            return
        self._gc_needed = False
        finalized = [
            rules.FinalizedView(m.key, m.vmi_key, m.final_at or 0.0, m.created_epoch_s + m.seq * 1e-6)
            for m in self.migrations.values()
            if m.phase.is_final
        ]
        for key in rules.finalized_to_delete(finalized):
            m = self.migrations.get(key)
            if m is not None and not m.deleting:
                m.deleting = True
                self._writes.append(VmimDeletion(m.namespace, m.name))
