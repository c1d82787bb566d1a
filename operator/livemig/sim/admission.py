"""VMIMs entering the queue: Pending, then a target pod once KubeVirt's caps admit it; and the VMIMs KubeVirt's
evacuation controller creates itself."""

from __future__ import annotations

from livemig.core.vocabulary import Outcome
from livemig.sim import rules
from livemig.sim.base import VMI_FINAL_PHASES
from livemig.sim.deletion import Deletions
from livemig.sim.objects import MigrationState
from livemig.sim.outcomes import VMI_SHUTDOWN_REASON
from livemig.sim.phases import MigrationPhases
from livemig.sim.rules import Phase
from livemig.sim.writes import VmimCreate


class Admission(MigrationPhases, Deletions):
    """virt-controller's queue: which VMIMs get a target pod, under the cluster and per-node caps."""

    def _start_pending(self, m: MigrationState, now: float) -> None:
        vmi = self.vmis.get(m.vmi_key)
        if vmi is None:
            # KubeVirt deletes a VMIM whose VMI does not exist and processes it no further (migration.go
            # `execute`): with its finalizer it stays Terminating in phase "".
            self._delete_orphan(m)
            return
        self._set_phase(m, Phase.PENDING, now)
        m.requeue_at = now
        if vmi.phase in VMI_FINAL_PHASES:
            self._fail(m, now, VMI_SHUTDOWN_REASON, outcome=Outcome.FAILED)
            return
        if vmi.migration_uid is not None and vmi.migration_uid != m.uid:
            self._fail(
                m,
                now,
                "VMI is not eligible for migration because another migration job is in progress.",
                outcome=Outcome.FAILED,
            )
            return
        # A VMI that is not Running yet keeps its VMIM Pending: KubeVirt creates the target pod only for a running
        # VMI (handleTargetPodCreation); `_admit` skips it until then.
        m.source_node = vmi.node
        vmi.migration_uid = m.uid
        self._vmim_status(m, {"sourcePod": f"virt-launcher-{m.vmi_key.split('/', 1)[1]}-source"})

    def _admit(self, now: float) -> None:
        views = [m.view() for m in self.open.values()]
        ready = {m.key for m in self.open.values() if m.requeue_at <= now and not m.deleting}
        ready = {
            k for k in ready if (vmi := self.vmis.get(self.open[k].vmi_key)) is not None and vmi.phase == "Running"
        }
        candidates = [v for v in views if v.key in ready or v.has_target_pod or v.phase is not Phase.PENDING]
        prioritized = self.priority_queue
        admitted = {
            v.key
            for v in rules.admit_pending(
                candidates,
                self.config.parallel_migrations_per_cluster,
                self.config.parallel_outbound_migrations_per_node,
                prioritized=prioritized,
                shuffle_seed=f"{self.seed}:{now:.3f}",
            )
        }
        for m in list(self.open.values()):
            if m.phase is not Phase.PENDING or m.has_target_pod or m.deleting:
                continue
            if m.key in admitted:
                m.has_target_pod = True
                m.pod_pending_since = now
                self._set_phase(m, Phase.SCHEDULING, now)
                pod = self._target_pod_name(m)
                self._vmim_event(m, "SuccessfulCreate", f"Created migration target pod {m.namespace}/{pod}")
                self._schedule_target(m, now)
                self._vmim_status(m)
            elif m.requeue_at <= now:
                m.requeue_at = now + rules.requeue_delay_s(m.priority, prioritized=prioritized)

    def _evacuate(self, now: float) -> None:
        """KubeVirt's evacuation controller (sim/evacuation.py): VMIMs for the VMIs of drain-tainted nodes."""
        unfinished = [
            (m.vmi_key, m.source_node or (self.vmis[m.vmi_key].node if m.vmi_key in self.vmis else ""))
            for m in self.open.values()
            if not m.phase.is_final
        ]
        manifests = self.evacuation.step(
            now,
            nodes={name: state.spec for name, state in self.nodes.items() if state.ready},
            vmis=self.vmis.values(),
            unfinished=unfinished,
            drain_taint_key=self.config.node_drain_taint_key,
            cluster_cap=self.config.parallel_migrations_per_cluster,
            node_cap=self.config.parallel_outbound_migrations_per_node,
            priority_queue=self.priority_queue,
        )
        for manifest in manifests:
            self._writes.append(
                VmimCreate(manifest["metadata"]["namespace"], manifest, str(manifest["spec"]["vmiName"]))
            )
