"""The simulated cluster's state in memory, and the writes that report it.

`SimulationBase` holds the VMIs, nodes and migrations and the writes and outcomes a tick collects; the classes built on
it add KubeVirt's rules, one concern each, and `state.Simulation` joins them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from livemig.core.cluster import Vmi
from livemig.core.errors import SpecError, SpecErrors
from livemig.core.kubevirt import KubevirtMigrationConfig, KvMigrationPolicy
from livemig.sim import rules
from livemig.sim.backend import backend_factory
from livemig.sim.evacuation import EvacuationController
from livemig.sim.faults import Fault, FaultType
from livemig.sim.objects import MigrationState, NodeState, PhaseHistogram, VmiState
from livemig.sim.rules import Phase
from livemig.sim.scenario import Scenario
from livemig.sim.writes import Event, VmimStatus, VmiPatch, Write

VMI_FINAL_PHASES = ("Succeeded", "Failed")


class SimulationBase:
    """The simulated cluster's state, and the helpers every rule uses to change a migration's phase and report it."""

    def __init__(self, scenario: Scenario, *, epoch_s: float, seed: int | None = None) -> None:
        self.scenario = scenario
        self.epoch_s = epoch_s
        self.settings = scenario.simulation
        self.seed = self.settings.seed if seed is None else seed
        self.config: KubevirtMigrationConfig = scenario.kubevirt
        self.kubevirt_version = scenario.kubevirt_version
        self.feature_gates: frozenset[str] = frozenset(scenario.feature_gates)
        self.policies: dict[str, KvMigrationPolicy] = {p.name: p for p in scenario.policies}
        self.namespace_labels: dict[str, dict[str, str]] = {
            ns.name: dict(ns.labels) for ns in scenario.snapshot.namespaces
        }
        self.nodes: dict[str, NodeState] = {n.name: NodeState(n) for n in scenario.snapshot.nodes}
        self.vmis: dict[str, VmiState] = {
            v.key: VmiState(v, v.node, {**v.labels, rules.NODE_NAME_LABEL: v.node}) for v in scenario.snapshot.vmis
        }
        errors: list[SpecError] = []
        for i, v in enumerate(scenario.snapshot.vmis):
            try:
                backend_factory(v.backend, f"vmis[{i}].backend")
            except SpecError as exc:
                errors.append(exc)
        if errors:
            raise SpecErrors(errors)
        self.migrations: dict[str, MigrationState] = {}
        self.phase_histogram = PhaseHistogram()
        self.initial_vmis: dict[str, list[Vmi]] = {}
        for v in scenario.snapshot.vmis:
            self.initial_vmis.setdefault(v.node, []).append(v)
        self.open: dict[str, MigrationState] = {}  # the unfinished ones (what the rules iterate over)
        self._gc_needed = False
        self.faults: list[Fault] = list(scenario.faults)
        self.fired: set[int] = set()
        self.vmis_lost = 0
        self.faults_fired: dict[str, int] = {t.value: 0 for t in FaultType}
        self.migration_totals: dict[str, int] = {"succeeded": 0, "failed": 0}
        self._seq = 0
        self._writes: list[Write] = []
        self._outcomes: list[dict[str, Any]] = []
        self.last_integrated: float = 0.0
        self.evacuation = EvacuationController()

    def timestamp(self, now: float) -> str:
        return datetime.fromtimestamp(self.epoch_s + now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _set_phase(self, m: MigrationState, phase: Phase, now: float) -> None:
        if not rules.transition_allowed(m.phase, phase):
            raise AssertionError(f"{m.key}: illegal transition {m.phase!r} -> {phase!r}")
        m.phase = phase
        m.timestamps = rules.add_phase_timestamp(m.timestamps, phase, self.timestamp(now))
        self.phase_histogram.observe(phase.value, now - m.created_at)
        if phase.is_final:
            self.open.pop(m.key, None)
            self._gc_needed = True

    @property
    def priority_queue(self) -> bool:
        """KubeVirt's MigrationPriorityQueue gate (off up to v1.8 unless the KubeVirt CR enables it)."""
        return self.kubevirt_version.priority_queue_enabled(self.feature_gates)

    @staticmethod
    def _target_pod_name(m: MigrationState) -> str:
        return f"virt-launcher-{m.vmi_key.split('/', 1)[1]}-{m.uid[:5]}"

    def _vmim_status(self, m: MigrationState, migration_state: Mapping[str, Any] | None = None) -> None:
        status: dict[str, Any] = {
            "phase": m.phase.value,
            "phaseTransitionTimestamps": m.timestamps,
            "conditions": m.conditions,
        }
        if migration_state is not None:
            status["migrationState"] = dict(migration_state)
        self._writes.append(VmimStatus(m.namespace, m.name, status))

    def _vmim_event(self, m: MigrationState, reason: str, message: str, *, warning: bool = False) -> None:
        self._writes.append(
            Event(m.namespace, "VirtualMachineInstanceMigration", m.name, m.uid, reason, message, warning)
        )

    def _vmi_event(self, m: MigrationState, reason: str, message: str, *, warning: bool = False) -> None:
        namespace, name = m.vmi_key.split("/", 1)
        self._writes.append(
            Event(namespace, "VirtualMachineInstance", name, None, reason, message, warning, "virt-handler")
        )

    def _vmi_patch(self, vmi: VmiState, patch: Mapping[str, Any], *, replace: bool = False) -> None:
        namespace, name = vmi.key.split("/", 1)
        self._writes.append(VmiPatch(namespace, name, patch, replace))

    def _publish(self, m: MigrationState, now: float) -> None:
        vmi = self.vmis[m.vmi_key]
        self._vmi_patch(vmi, {"status": {"migrationState": self._migration_state_manifest(m, now)}})
        self._vmim_status(m)

    def _migration_state_manifest(self, m: MigrationState, now: float) -> dict[str, Any]:
        """The VMI's `status.migrationState` as KubeVirt leaves it for this migration."""
        ms: dict[str, Any] = {
            "migrationUid": m.uid,
            "sourceNode": m.source_node,
            "sourcePod": f"virt-launcher-{m.vmi_key.split('/', 1)[1]}-source",
            "targetNode": m.target_node,
            "targetPod": self._target_pod_name(m),
        }
        if m.policy_name is not None:
            ms["migrationPolicyName"] = m.policy_name
        if m.config is not None:  # always at hand-off: the policy-merged or else the cluster's configuration (§4.3)
            ms["migrationConfiguration"] = m.config.handoff_manifest()
        if m.phase in (Phase.TARGET_READY, Phase.RUNNING) or m.running_since is not None:
            ms["targetNodeAddress"] = _node_address(m.target_node or "")
        if m.running_since is not None:
            ms["startTimestamp"] = self.timestamp(m.running_since)
        if m.mode is not None:
            ms["mode"] = m.mode
        if m.abort_requested:
            ms["abortRequested"] = True
        if m.abort_status is not None:
            ms["abortStatus"] = m.abort_status
        if m.end_at is not None:
            ms["endTimestamp"] = self.timestamp(m.end_at)
            ms["failed"] = m.outcome is None or not m.outcome.succeeded
            # From v1.6 only success sets `completed` (the source virt-handler does not copy it on failure); v1.5
            # copied virt-launcher's `completed`, true on failure too.
            if not ms["failed"] or self.kubevirt_version.completed_on_failure:
                ms["completed"] = True
            if m.failure_reason:
                ms["failureReason"] = m.failure_reason
            if not ms["failed"]:
                ms["targetNodeDomainDetected"] = True
                ms["targetNodeDomainReadyTimestamp"] = self.timestamp(m.end_at)
        return ms


def _node_address(node: str) -> str:
    """A stable fake address for a node (targetNodeAddress)."""
    h = sum(ord(c) * (i + 1) for i, c in enumerate(node))
    return f"10.{(h >> 16) % 256}.{(h >> 8) % 256}.{h % 254 + 1}"
