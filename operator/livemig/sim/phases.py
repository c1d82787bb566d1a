"""One migration carried through its phases once its target pod exists: scheduling the pod, the hand-off, the target
getting ready, the start of the run (then `running`)."""

from __future__ import annotations

import random

from livemig.core.kubevirt import decide_handoff_config
from livemig.core.vocabulary import Outcome
from livemig.sim import rules
from livemig.sim.faults import FaultType, target_refuses
from livemig.sim.objects import MigrationState
from livemig.sim.outcomes import TARGET_DOWN_REASON
from livemig.sim.rules import Phase
from livemig.sim.running import RunningMigrations
from livemig.sim.scheduler import Placement, pick_target_node


class MigrationPhases(RunningMigrations):
    """virt-controller's per-migration steps from Scheduling to Running, each at the simulated time it falls due."""

    def _jitter(self, m: MigrationState, stage: str, seconds: float) -> float:
        """A delay with seeded jitter, drawn per (seed, VMIM, stage): the same for a migration whatever else runs."""
        j = self.settings.delays.jitter
        if not j:
            return seconds
        rng = random.Random(f"{self.seed}:{m.key}:{stage}")
        return seconds * (1 + rng.uniform(-j, j))

    def _placements(self) -> list[Placement]:
        out = [Placement(v.spec, v.node) for v in self.vmis.values() if v.phase == "Running"]
        for m in self.open.values():
            if m.target_node is not None and m.vmi_key in self.vmis:
                out.append(Placement(self.vmis[m.vmi_key].spec, m.target_node))
        return out

    def _schedule_target(self, m: MigrationState, now: float) -> None:
        vmi = self.vmis[m.vmi_key]
        not_ready = frozenset(n for n, s in self.nodes.items() if not s.ready)
        # createTargetPod merges addedNodeSelector first and the VMI's own nodeSelector over it: on a shared key
        # the VMI's value wins and the added one is dropped.
        added = {k: v for k, v in m.added_node_selector.items() if k not in vmi.spec.node_selector}
        target = pick_target_node(
            vmi.spec,
            vmi.node,
            (s.spec for s in self.nodes.values()),
            self._placements(),
            added_node_selector=added,
            not_ready=not_ready,
            sizing=self.scenario.snapshot.launcher,
        )
        if target is None:
            m.pod_unschedulable = True
            return
        m.pod_unschedulable = False
        m.target_node = target
        m.next_at = now + self._jitter(m, "pod", self.settings.delays.target_pod_scheduled_s)

    def _advance(self, m: MigrationState, now: float) -> None:
        """Carry `m` through every step due by `now`, each at the simulated time it fell due (so a coarse tick
        does not shift the timestamps or the start of the physics)."""
        while not m.phase.is_final:
            before = m.phase
            self._advance_once(m, now)
            if m.phase is before or (m.phase is Phase.RUNNING and before is Phase.RUNNING):
                return

    def _advance_once(self, m: MigrationState, now: float) -> None:
        if m.phase is Phase.SCHEDULING:
            if m.target_node is None:
                vmi_name = m.vmi_key.split("/", 1)[1]
                if m.pod_unschedulable and not m.unschedulable_reported:
                    m.unschedulable_reported = True
                    self._vmim_event(
                        m,
                        "migrationTargetPodUnschedulable",
                        f"Migration target pod for VMI [{m.namespace}/{vmi_name}] is currently unschedulable.",
                        warning=True,
                    )
                if rules.target_pod_timed_out(
                    m.pod_pending_since,
                    m.pod_unschedulable,
                    now,
                    unschedulable_timeout_s=m.unschedulable_timeout_s,
                    pending_timeout_s=m.pending_timeout_s,
                ):
                    # handlePendingPodTimeout deletes the pod; the next reconcile finds it gone and fails the VMIM.
                    kind = "unschedulable" if m.pod_unschedulable else "pending"
                    pod = f"{m.namespace}/{self._target_pod_name(m)}"
                    self._vmim_event(m, "SuccessfulDelete", f"{kind} pod {pod} timeout period exceeded")
                    self._fail(m, now, TARGET_DOWN_REASON, outcome=Outcome.FAILED)
                    return
                self._schedule_target(m, now)
                return
            if now >= m.next_at:
                t = m.next_at
                self._set_phase(m, Phase.SCHEDULED, t)
                self._vmim_status(m)
                self._handoff(m, t)
            return
        if m.phase is Phase.PREPARING_TARGET:
            if target_refuses(self.faults, m.target_node or "", now):
                self.faults_fired[FaultType.TARGET_REFUSES.value] += 1
                self._fail(m, now, TARGET_DOWN_REASON, outcome=Outcome.FAILED)
                return
            if now >= m.next_at:
                t = m.next_at
                self._set_phase(m, Phase.TARGET_READY, t)
                m.next_at = t + self._jitter(m, "start", self.settings.delays.migration_start_s)
                self._publish(m, t)
            return
        if m.phase is Phase.TARGET_READY:
            source = self.nodes.get(m.source_node)
            if source is not None and source.failed_at is not None:
                return  # no source virt-handler to start it: it waits for the VMI to be failed
            if now >= m.next_at:
                self._start_running(m, m.next_at)
            return
        if m.phase is Phase.RUNNING:
            self._step_running(m, now)

    def _handoff(self, m: MigrationState, now: float) -> None:
        vmi = self.vmis[m.vmi_key]
        namespace = m.vmi_key.split("/", 1)[0]
        decision = decide_handoff_config(
            self.config,
            sorted(self.policies.values(), key=lambda p: p.name),
            vmi.labels,
            self.namespace_labels.get(namespace, {}),
        )
        m.config = decision.config
        m.policy_name = decision.policy_name
        m.matched_policy = decision.matched_policy
        self._set_phase(m, Phase.PREPARING_TARGET, now)
        self._vmim_event(m, "SuccessfulHandOver", "Migration target pod is ready for preparation by virt-handler.")
        self._vmi_event(m, "PreparingTarget", "VirtualMachineInstance Migration Target Prepared.")
        m.next_at = now + self._jitter(m, "target", self.settings.delays.target_ready_s)
        vmi.labels[rules.TARGET_NODE_LABEL] = m.target_node or ""
        self._vmi_patch(
            vmi,
            {
                "metadata": {"labels": {rules.TARGET_NODE_LABEL: m.target_node}},
                "status": {"migrationState": self._migration_state_manifest(m, now)},
            },
            replace=True,
        )
        self._vmim_status(m)
